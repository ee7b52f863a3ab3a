import { randomUUID } from 'node:crypto';
import type { HubDb } from './hub-db.js';

export interface GalleryRow {
  id: string;
  name: string;
  isDefault: boolean;
  headSeq: number;
  createdAt: string;
}

export interface LogEntry {
  seq: number;
  op: 'upsert' | 'delete';
  subjectId: string;
}

export const DEFAULT_GALLERY = 'default';

/**
 * Galleries and their ordered change logs. The default gallery holds every subject; others hold
 * their members. Each membership or content change appends (gallery, seq, op, subject).
 */
export class GalleriesRepository {
  constructor(private readonly db: HubDb) {
    this.db
      .prepare("INSERT OR IGNORE INTO galleries (id, name, is_default, created_at) VALUES (?, 'default', 1, ?)")
      .run(DEFAULT_GALLERY, new Date().toISOString());
  }

  create(name: string): GalleryRow {
    const id = randomUUID();
    this.db.prepare('INSERT INTO galleries (id, name, created_at) VALUES (?, ?, ?)').run(id, name, new Date().toISOString());
    return this.get(id)!;
  }

  get(id: string): GalleryRow | undefined {
    const r = this.db.prepare('SELECT id, name, is_default AS isDefault, head_seq AS headSeq, created_at AS createdAt FROM galleries WHERE id = ?').get(id) as
      | (Omit<GalleryRow, 'isDefault'> & { isDefault: number })
      | undefined;
    return r ? { ...r, isDefault: r.isDefault === 1 } : undefined;
  }

  list(): GalleryRow[] {
    return (this.db.prepare('SELECT id, name, is_default AS isDefault, head_seq AS headSeq, created_at AS createdAt FROM galleries ORDER BY is_default DESC, name').all() as (Omit<GalleryRow, 'isDefault'> & { isDefault: number })[]).map((r) => ({
      ...r,
      isDefault: r.isDefault === 1,
    }));
  }

  delete(id: string): boolean {
    return this.db.prepare('DELETE FROM galleries WHERE id = ? AND is_default = 0').run(id).changes > 0;
  }

  /** Galleries a subject belongs to (the default one always). */
  galleriesOf(subjectId: string): string[] {
    const rows = this.db.prepare('SELECT gallery_id AS g FROM gallery_members WHERE subject_id = ?').all(subjectId) as { g: string }[];
    return [DEFAULT_GALLERY, ...rows.map((r) => r.g)];
  }

  members(galleryId: string): string[] {
    if (galleryId === DEFAULT_GALLERY) return (this.db.prepare('SELECT id FROM subjects ORDER BY id').all() as { id: string }[]).map((r) => r.id);
    return (this.db.prepare('SELECT subject_id AS s FROM gallery_members WHERE gallery_id = ? ORDER BY subject_id').all(galleryId) as { s: string }[]).map((r) => r.s);
  }

  addMember(galleryId: string, subjectId: string): boolean {
    return this.db.prepare('INSERT OR IGNORE INTO gallery_members (gallery_id, subject_id) VALUES (?, ?)').run(galleryId, subjectId).changes > 0;
  }

  removeMember(galleryId: string, subjectId: string): boolean {
    return this.db.prepare('DELETE FROM gallery_members WHERE gallery_id = ? AND subject_id = ?').run(galleryId, subjectId).changes > 0;
  }

  removeSubjectEverywhere(subjectId: string): void {
    this.db.prepare('DELETE FROM gallery_members WHERE subject_id = ?').run(subjectId);
  }

  /** Append one change; returns the new head. */
  append(galleryId: string, op: LogEntry['op'], subjectId: string): number {
    return this.db.transaction(() => {
      this.db.prepare('UPDATE galleries SET head_seq = head_seq + 1 WHERE id = ?').run(galleryId);
      const head = (this.db.prepare('SELECT head_seq AS h FROM galleries WHERE id = ?').get(galleryId) as { h: number }).h;
      this.db.prepare('INSERT INTO gallery_log (gallery_id, seq, op, subject_id, at) VALUES (?, ?, ?, ?, ?)').run(galleryId, head, op, subjectId, new Date().toISOString());
      return head;
    })();
  }

  since(galleryId: string, seq: number, limit: number): LogEntry[] {
    return this.db.prepare('SELECT seq, op, subject_id AS subjectId FROM gallery_log WHERE gallery_id = ? AND seq > ? ORDER BY seq LIMIT ?').all(galleryId, seq, limit) as LogEntry[];
  }

  head(galleryId: string): number {
    return (this.db.prepare('SELECT head_seq AS h FROM galleries WHERE id = ?').get(galleryId) as { h: number } | undefined)?.h ?? 0;
  }
}
