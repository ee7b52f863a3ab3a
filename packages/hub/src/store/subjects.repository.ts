import { randomUUID } from 'node:crypto';
import { isoUtc, type HubDb } from './hub-db.js';
import type { SubjectPatch, SubjectRow, SubjectsRepo, TemplateRow } from './ports.js';

export type { SubjectRow, TemplateRow } from './ports.js';

const SELECT = `SELECT s.id, s.name, s.consent_at AS consentAt, s.purpose, s.delete_after AS deleteAfter,
  s.created_at AS createdAt, s.updated_at AS updatedAt, (SELECT COUNT(*) FROM templates t WHERE t.subject_id = s.id) AS templates
  FROM subjects s`;

export function chunked<T>(ids: readonly string[], query: (ids: string[]) => T[]): T[] {
  const out: T[] = [];
  for (let i = 0; i < ids.length; i += 500) out.push(...query(ids.slice(i, i + 500)));
  return out;
}

export class SqliteSubjects implements SubjectsRepo {
  constructor(private readonly db: HubDb) {}

  async create(s: { name: string; consentAt?: string | null; purpose?: string | null; deleteAfter?: string | null }): Promise<SubjectRow> {
    const id = randomUUID();
    const now = new Date().toISOString();
    this.db
      .prepare('INSERT INTO subjects (id, name, consent_at, purpose, delete_after, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, s.name, isoUtc(s.consentAt ?? null), s.purpose ?? null, isoUtc(s.deleteAfter ?? null), now, now);
    return this.row(id)!;
  }

  async get(id: string): Promise<SubjectRow | undefined> {
    return this.row(id);
  }

  private row(id: string): SubjectRow | undefined {
    return this.db.prepare(`${SELECT} WHERE s.id = ?`).get(id) as SubjectRow | undefined;
  }

  /** Page by name then id; `after` is the last row of the previous page. */
  async list(q: { search?: string; limit: number; after?: { name: string; id: string } }): Promise<SubjectRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.search) {
      where.push("s.name LIKE ? ESCAPE '\\'");
      args.push(`%${q.search.replace(/[%_\\]/g, (c) => `\\${c}`)}%`);
    }
    if (q.after) {
      where.push('(s.name > ? OR (s.name = ? AND s.id > ?))');
      args.push(q.after.name, q.after.name, q.after.id);
    }
    const sql = `${SELECT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY s.name, s.id LIMIT ?`;
    return this.db.prepare(sql).all(...args, q.limit) as SubjectRow[];
  }

  async update(id: string, patch: SubjectPatch): Promise<SubjectRow | undefined> {
    const cols: [string, unknown][] = [];
    if (patch.name !== undefined) cols.push(['name', patch.name]);
    if (patch.consentAt !== undefined) cols.push(['consent_at', isoUtc(patch.consentAt)]);
    if (patch.purpose !== undefined) cols.push(['purpose', patch.purpose]);
    if (patch.deleteAfter !== undefined) cols.push(['delete_after', isoUtc(patch.deleteAfter)]);
    cols.push(['updated_at', new Date().toISOString()]);
    this.db.prepare(`UPDATE subjects SET ${cols.map(([c]) => `${c} = ?`).join(', ')} WHERE id = ?`).run(...cols.map(([, v]) => v), id);
    return this.row(id);
  }

  /** Subjects whose delete-after date has passed. */
  async expired(now: Date): Promise<string[]> {
    return (this.db.prepare('SELECT id FROM subjects WHERE delete_after IS NOT NULL AND delete_after <= ?').all(now.toISOString()) as { id: string }[]).map((r) => r.id);
  }

  async addTemplate(t: { subjectId: string; modelId: string; vector: Float32Array; quality: number; sourceSha256: string }): Promise<{ id: string; added: boolean }> {
    return this.db.transaction(() => {
      const dup = this.db.prepare('SELECT id FROM templates WHERE subject_id = ? AND model_id = ? AND source_sha256 = ?').get(t.subjectId, t.modelId, t.sourceSha256) as { id: string } | undefined;
      if (dup) return { id: dup.id, added: false };
      const id = randomUUID();
      this.db
        .prepare('INSERT INTO templates (id, subject_id, model_id, vector, quality, source_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(id, t.subjectId, t.modelId, Buffer.from(t.vector.buffer, t.vector.byteOffset, t.vector.byteLength), t.quality, t.sourceSha256, new Date().toISOString());
      this.db.prepare('UPDATE subjects SET updated_at = ? WHERE id = ?').run(new Date().toISOString(), t.subjectId);
      return { id, added: true };
    })();
  }

  /** Templates of these subjects (any number of ids: queried in chunks under SQLite's variable limit). */
  async templates(subjectIds: readonly string[]): Promise<TemplateRow[]> {
    return chunked(subjectIds, (ids) => {
      const rows = this.db
        .prepare(`SELECT id, subject_id AS subjectId, model_id AS modelId, vector, quality FROM templates WHERE subject_id IN (${ids.map(() => '?').join(',')})`)
        .all(...ids) as (Omit<TemplateRow, 'vector'> & { vector: Buffer })[];
      return rows.map((r) => ({ ...r, vector: new Float32Array(r.vector.buffer.slice(r.vector.byteOffset, r.vector.byteOffset + r.vector.byteLength)) }));
    });
  }

  /** Names of these subjects by id (absent ids are left out). */
  async names(subjectIds: readonly string[]): Promise<Map<string, string>> {
    const rows = chunked(subjectIds, (ids) => this.db.prepare(`SELECT id, name FROM subjects WHERE id IN (${ids.map(() => '?').join(',')})`).all(...ids) as { id: string; name: string }[]);
    return new Map(rows.map((r) => [r.id, r.name]));
  }

  async count(): Promise<{ subjects: number; templates: number }> {
    const s = this.db.prepare('SELECT COUNT(*) AS n FROM subjects').get() as { n: number };
    const t = this.db.prepare('SELECT COUNT(*) AS n FROM templates').get() as { n: number };
    return { subjects: s.n, templates: t.n };
  }

  async templateModelsExcept(modelId: string): Promise<string[]> {
    return (this.db.prepare('SELECT DISTINCT model_id AS m FROM templates WHERE model_id != ? ORDER BY model_id').all(modelId) as { m: string }[]).map((r) => r.m);
  }

  async templateSources(modelId: string): Promise<{ subjectId: string; sourceSha256: string }[]> {
    return this.db
      .prepare('SELECT subject_id AS subjectId, source_sha256 AS sourceSha256 FROM templates WHERE model_id = ? AND source_sha256 IS NOT NULL ORDER BY subject_id, source_sha256')
      .all(modelId) as { subjectId: string; sourceSha256: string }[];
  }
}
