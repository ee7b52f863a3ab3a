import { randomUUID } from 'node:crypto';
import type { HubDb } from './hub-db.js';
import { DEFAULT_GALLERY, type GalleriesRepo, type GalleryRow, type LogEntry } from './ports.js';

export { DEFAULT_GALLERY, type GalleryRow, type LogEntry } from './ports.js';

type Raw = Omit<GalleryRow, 'isDefault'> & { isDefault: number };
const SELECT = 'SELECT id, name, is_default AS isDefault, head_seq AS headSeq, created_at AS createdAt FROM galleries';
const row = (r: Raw): GalleryRow => ({ ...r, isDefault: r.isDefault === 1 });

/**
 * Galleries and their ordered change logs. The default gallery holds every subject; others hold
 * their members. Each membership or content change appends (gallery, seq, op, subject).
 */
export class SqliteGalleries implements GalleriesRepo {
  constructor(private readonly db: HubDb) {
    this.db.prepare("INSERT OR IGNORE INTO galleries (id, name, is_default, created_at) VALUES (?, 'default', 1, ?)").run(DEFAULT_GALLERY, new Date().toISOString());
  }

  async create(name: string): Promise<GalleryRow> {
    const id = randomUUID();
    this.db.prepare('INSERT INTO galleries (id, name, created_at) VALUES (?, ?, ?)').run(id, name, new Date().toISOString());
    return row(this.db.prepare(`${SELECT} WHERE id = ?`).get(id) as Raw);
  }

  async get(id: string): Promise<GalleryRow | undefined> {
    const r = this.db.prepare(`${SELECT} WHERE id = ?`).get(id) as Raw | undefined;
    return r ? row(r) : undefined;
  }

  async list(): Promise<GalleryRow[]> {
    return (this.db.prepare(`${SELECT} ORDER BY is_default DESC, name`).all() as Raw[]).map(row);
  }

  async delete(id: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM galleries WHERE id = ? AND is_default = 0').run(id).changes > 0;
  }

  async galleriesOf(subjectId: string): Promise<string[]> {
    return this.memberOf(subjectId);
  }

  private memberOf(subjectId: string): string[] {
    const rows = this.db.prepare('SELECT gallery_id AS g FROM gallery_members WHERE subject_id = ? ORDER BY gallery_id').all(subjectId) as { g: string }[];
    return [DEFAULT_GALLERY, ...rows.map((r) => r.g)];
  }

  async members(galleryId: string): Promise<string[]> {
    if (galleryId === DEFAULT_GALLERY) return (this.db.prepare('SELECT id FROM subjects ORDER BY id').all() as { id: string }[]).map((r) => r.id);
    return (this.db.prepare('SELECT subject_id AS s FROM gallery_members WHERE gallery_id = ? ORDER BY subject_id').all(galleryId) as { s: string }[]).map((r) => r.s);
  }

  async addMember(galleryId: string, subjectId: string): Promise<number | null> {
    return this.db.transaction(() => {
      const added = this.db.prepare('INSERT OR IGNORE INTO gallery_members (gallery_id, subject_id) VALUES (?, ?)').run(galleryId, subjectId).changes > 0;
      return added ? this.appendOne(galleryId, 'upsert', subjectId) : null;
    })();
  }

  async removeMember(galleryId: string, subjectId: string): Promise<number | null> {
    return this.db.transaction(() => {
      const removed = this.db.prepare('DELETE FROM gallery_members WHERE gallery_id = ? AND subject_id = ?').run(galleryId, subjectId).changes > 0;
      return removed ? this.appendOne(galleryId, 'delete', subjectId) : null;
    })();
  }

  async append(galleryIds: readonly string[], op: LogEntry['op'], subjectId: string): Promise<{ galleryId: string; seq: number }[]> {
    return this.db.transaction(() => galleryIds.map((galleryId) => ({ galleryId, seq: this.appendOne(galleryId, op, subjectId) })))();
  }

  async eraseSubject(subjectId: string): Promise<{ galleryId: string; seq: number }[] | undefined> {
    return this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM subjects WHERE id = ?').get(subjectId) === undefined) return undefined;
      const galleries = this.memberOf(subjectId);
      this.db.prepare('DELETE FROM gallery_members WHERE subject_id = ?').run(subjectId);
      this.db.prepare('DELETE FROM subjects WHERE id = ?').run(subjectId); // templates and crops cascade
      return galleries.map((galleryId) => ({ galleryId, seq: this.appendOne(galleryId, 'delete', subjectId) }));
    })();
  }

  /** Inside a transaction: bump the head and log the change under it. */
  private appendOne(galleryId: string, op: LogEntry['op'], subjectId: string): number {
    const r = this.db.prepare('UPDATE galleries SET head_seq = head_seq + 1 WHERE id = ? RETURNING head_seq AS h').get(galleryId) as { h: number } | undefined;
    if (r === undefined) throw new Error(`no gallery with id ${galleryId}`);
    this.db.prepare('INSERT INTO gallery_log (gallery_id, seq, op, subject_id, at) VALUES (?, ?, ?, ?, ?)').run(galleryId, r.h, op, subjectId, new Date().toISOString());
    return r.h;
  }

  async since(galleryId: string, seq: number, limit: number): Promise<LogEntry[]> {
    return this.db.prepare('SELECT seq, op, subject_id AS subjectId FROM gallery_log WHERE gallery_id = ? AND seq > ? ORDER BY seq LIMIT ?').all(galleryId, seq, limit) as LogEntry[];
  }

  async head(galleryId: string): Promise<number> {
    return (this.db.prepare('SELECT head_seq AS h FROM galleries WHERE id = ?').get(galleryId) as { h: number } | undefined)?.h ?? 0;
  }

  async compactLogs(keep: number): Promise<number> {
    return this.db.prepare('DELETE FROM gallery_log WHERE seq <= (SELECT head_seq FROM galleries g WHERE g.id = gallery_log.gallery_id) - ?').run(keep).changes;
  }
}
