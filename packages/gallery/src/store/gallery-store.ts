import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ConfigError, ModelError, NotFoundError } from '@facefleet/protocol';
import { FlatIndex, type TemplateHit, type TemplateRef } from '../match/flat-index.js';
import { SketchIndex } from '../match/sketch-index.js';
import { migrate } from './migrations.js';

export interface Subject {
  id: string;
  name: string;
  templates: number;
  createdAt: string;
}

export interface TemplateInput {
  modelId: string;
  vector: Float32Array;
  /** sha256 of the source image: the same image enrolled twice adds one template. */
  sourceSha256?: string;
  quality?: number;
}

function isSqliteFile(path: string): boolean {
  try {
    const fd = openSync(path, 'r');
    try {
      const header = Buffer.alloc(16);
      return readSync(fd, header, 0, 16, 0) === 16 && header.toString('latin1') === 'SQLite format 3\u0000';
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

export type SyncChange =
  | { op: 'upsert'; subjectId: string; name: string; templates: { id: string; modelId: string; vector: Float32Array }[] }
  | { op: 'delete'; subjectId: string };

export interface SyncApplied {
  upserts: number;
  deletes: number;
  /** Templates left out: those of another model when the caller asked for `only` one (0 otherwise). */
  skippedTemplates: number;
}

export interface GalleryOpenOptions {
  /** Refuse to create a new file (commands that only read a gallery). */
  mustExist?: boolean;
  readonly?: boolean;
  /** Exact search up to this many templates of a model, the sketch index above (default EXACT_SEARCH_UP_TO). */
  exactSearchUpTo?: number;
}

/**
 * A face gallery in one SQLite file (WAL): subjects, and their templates tagged with the model
 * that made them. Search runs on an in-memory index per model, built on first use and kept
 * in step with writes made through this object: exact (FlatIndex) up to EXACT_SEARCH_UP_TO
 * templates, the SketchIndex above (exact similarities, recall@1 measured by `pnpm bench --part identify`).
 *
 * A standalone gallery (enrolled here) holds one model's templates. A managed gallery (synced
 * from a hub) holds every model the hub sends: during an embedder rollout the hub sends each
 * subject's templates of the old and the new model, so a device can switch model and gallery
 * together (issue 5); search then uses only the templates of the model asked for.
 */
/** Exact search up to this many templates of a model (under 20 ms p99 on one core, bench/REPORT.md); the sketch index above. */
export const EXACT_SEARCH_UP_TO = 100_000;

interface TemplateIndex {
  add(ref: TemplateRef, vector: Float32Array): void;
  removeSubject(subjectId: string): number;
  search(query: Float32Array, k: number): TemplateHit[];
}

export class GalleryStore {
  private readonly db: Database.Database;
  private readonly indexes = new Map<string, TemplateIndex>();
  private managedGallery: boolean;

  private constructor(
    db: Database.Database,
    readonly path: string,
    private readonly exactSearchUpTo = EXACT_SEARCH_UP_TO,
  ) {
    this.db = db;
    this.managedGallery = this.getMeta('managed') === '1';
  }

  /** Synced from a hub (holds the templates of every model the hub sends). */
  get managed(): boolean {
    return this.managedGallery;
  }

  static open(path: string, options: GalleryOpenOptions = {}): GalleryStore {
    if (options.mustExist === true && path !== ':memory:' && !existsSync(path)) {
      throw new NotFoundError(`gallery ${path} does not exist (enroll someone first)`);
    }
    if (options.mustExist === true && path !== ':memory:' && !isSqliteFile(path)) {
      throw new ConfigError(`${path} is not a gallery (not an SQLite database); nothing was changed`);
    }
    let db: Database.Database;
    try {
      db = new Database(path, { readonly: options.readonly === true, fileMustExist: options.mustExist === true });
      if (options.readonly !== true) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
      }
      db.pragma('busy_timeout = 5000');
      if (options.readonly !== true) migrate(db);
      else db.prepare('SELECT 1 FROM subjects LIMIT 1').get();
      db.pragma('foreign_keys = ON');
    } catch (err) {
      throw new ConfigError(`cannot open gallery ${path}: ${(err as Error).message}`, { cause: err });
    }
    return new GalleryStore(db, path, options.exactSearchUpTo);
  }

  close(): void {
    this.db.close();
  }

  /** The subject with this name, created when absent. */
  ensureSubject(name: string): Subject {
    const trimmed = name.trim();
    if (trimmed === '') throw new ConfigError('subject name is empty');
    const existing = this.subjectByName(trimmed);
    if (existing) return existing;
    const id = randomUUID();
    const createdAt = new Date().toISOString();
    this.db.prepare('INSERT INTO subjects (id, name, created_at) VALUES (?, ?, ?)').run(id, trimmed, createdAt);
    return { id, name: trimmed, templates: 0, createdAt };
  }

  subjectByName(name: string): Subject | undefined {
    const row = this.db
      .prepare(
        `SELECT s.id, s.name, s.created_at AS createdAt, COUNT(t.id) AS templates
         FROM subjects s LEFT JOIN templates t ON t.subject_id = s.id WHERE s.name = ? GROUP BY s.id`,
      )
      .get(name.trim()) as Subject | undefined;
    return row;
  }

  listSubjects(): Subject[] {
    return this.db
      .prepare(
        `SELECT s.id, s.name, s.created_at AS createdAt, COUNT(t.id) AS templates
         FROM subjects s LEFT JOIN templates t ON t.subject_id = s.id GROUP BY s.id ORDER BY s.name`,
      )
      .all() as Subject[];
  }

  subjectName(id: string): string | undefined {
    return (this.db.prepare('SELECT name FROM subjects WHERE id = ?').get(id) as { name: string } | undefined)?.name;
  }

  /** Erase a subject and every template of it. Returns the number of templates removed. */
  forget(name: string): number {
    const subject = this.subjectByName(name);
    if (!subject) throw new NotFoundError(`no subject named "${name}"`);
    this.db.prepare('DELETE FROM subjects WHERE id = ?').run(subject.id);
    for (const index of this.indexes.values()) index.removeSubject(subject.id);
    return subject.templates;
  }

  getMeta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** Applied sequence number per synced gallery (empty for a standalone gallery). */
  sequences(): Record<string, number> {
    const rows = this.db.prepare("SELECT key, value FROM meta WHERE key LIKE 'seq:%'").all() as { key: string; value: string }[];
    return Object.fromEntries(rows.map((r) => [r.key.slice(4), Number(r.value)]));
  }

  /**
   * Apply one gallery's changes from the hub in one transaction: upserts replace a subject's
   * name and templates (every model's; with `only`, templates of other models are skipped and
   * counted), deletes drop the membership; subjects left in no gallery are erased, local seeds
   * included (a managed agent's galleries are the hub's). Records `toSeq` as the gallery's sequence.
   */
  applySync(
    galleryId: string,
    sync: { snapshot: boolean; toSeq: number; changes: readonly SyncChange[] },
    only?: string,
  ): SyncApplied {
    const r = this.db.transaction(() => {
      if (sync.snapshot) this.db.prepare('DELETE FROM gallery_members WHERE gallery_id = ?').run(galleryId);
      // The hub answered with changes, not the rest of a snapshot being staged: that one is moot.
      this.clearStaging(galleryId);
      const r = this.writeChanges(galleryId, sync.changes, only);
      this.finishSync(galleryId, sync.toSeq);
      return r;
    })();
    this.indexes.clear();
    return r;
  }

  private writeChanges(galleryId: string, changes: readonly SyncChange[], only: string | undefined): SyncApplied {
    let upserts = 0, deletes = 0, skippedTemplates = 0;
    const now = new Date().toISOString();
    const del = this.db.prepare('DELETE FROM gallery_members WHERE gallery_id = ? AND subject_id = ?');
    const subject = this.db.prepare('INSERT INTO subjects (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name');
    const clear = this.db.prepare('DELETE FROM templates WHERE subject_id = ?');
    const template = this.db.prepare('INSERT INTO templates (id, subject_id, model_id, dim, vector, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING');
    const member = this.db.prepare('INSERT OR IGNORE INTO gallery_members (gallery_id, subject_id) VALUES (?, ?)');
    for (const c of changes) {
      if (c.op === 'delete') {
        del.run(galleryId, c.subjectId);
        deletes++;
        continue;
      }
      subject.run(c.subjectId, c.name, now);
      clear.run(c.subjectId);
      for (const t of c.templates) {
        if (only !== undefined && t.modelId !== only) {
          skippedTemplates++;
          continue;
        }
        template.run(t.id, c.subjectId, t.modelId, t.vector.length, Buffer.from(t.vector.buffer, t.vector.byteOffset, t.vector.byteLength), now);
      }
      member.run(galleryId, c.subjectId);
      upserts++;
    }
    return { upserts, deletes, skippedTemplates };
  }

  private finishSync(galleryId: string, toSeq: number): void {
    this.db.prepare('DELETE FROM subjects WHERE id NOT IN (SELECT subject_id FROM gallery_members)').run();
    this.setMeta(`seq:${galleryId}`, String(toSeq));
    this.setMeta('managed', '1');
    this.managedGallery = true;
  }

  /**
   * One part of a snapshot that travels in parts. Parts are staged in this file in order (part 0
   * starts over); the last one replaces the gallery with everything staged, in one transaction,
   * so a crash or a cut link in between leaves the gallery as it was and the staging resumable.
   * Returns what to ask for next, or the result once applied; `duplicate` for a part already
   * staged; `restart` when the part does not follow what is staged (another snapshot, or a gap).
   */
  stageSnapshotPart(
    galleryId: string,
    part: { toSeq: number; index: number; count: number; changes: readonly SyncChange[] },
    only?: string,
  ): { state: 'staged'; next: number; skippedTemplates: number } | { state: 'applied'; result: SyncApplied } | { state: 'duplicate' } | { state: 'restart'; reason: string } {
    if (part.count === 1) return { state: 'applied', result: this.applySync(galleryId, { snapshot: true, toSeq: part.toSeq, changes: part.changes }, only) };
    const progress = this.snapshotProgress()[galleryId];
    if (part.index > 0 && progress !== undefined && progress.toSeq === part.toSeq && part.index < progress.part) return { state: 'duplicate' };
    if (part.index > 0 && (progress === undefined || progress.toSeq !== part.toSeq || progress.part !== part.index)) {
      return { state: 'restart', reason: progress ? `have part ${progress.part - 1} of snapshot ${progress.toSeq}, got part ${part.index} of ${part.toSeq}` : `got part ${part.index} with nothing staged` };
    }
    let skippedTemplates = 0;
    const last = part.index === part.count - 1;
    const result = this.db.transaction(() => {
      if (part.index === 0) this.clearStaging(galleryId);
      const subject = this.db.prepare('INSERT OR REPLACE INTO staged_subjects (gallery_id, subject_id, name) VALUES (?, ?, ?)');
      const template = this.db.prepare('INSERT OR REPLACE INTO staged_templates (gallery_id, id, subject_id, model_id, dim, vector) VALUES (?, ?, ?, ?, ?, ?)');
      for (const c of part.changes) {
        if (c.op !== 'upsert') continue; // a snapshot holds members only
        subject.run(galleryId, c.subjectId, c.name);
        for (const t of c.templates) {
          if (only !== undefined && t.modelId !== only) {
            skippedTemplates++;
            continue;
          }
          template.run(galleryId, t.id, c.subjectId, t.modelId, t.vector.length, Buffer.from(t.vector.buffer, t.vector.byteOffset, t.vector.byteLength));
        }
      }
      if (!last) {
        this.setMeta(`staging:${galleryId}`, JSON.stringify({ toSeq: part.toSeq, part: part.index + 1 }));
        return undefined;
      }
      const now = new Date().toISOString();
      this.db.prepare('DELETE FROM gallery_members WHERE gallery_id = ?').run(galleryId);
      this.db
        .prepare('INSERT INTO subjects (id, name, created_at) SELECT subject_id, name, ? FROM staged_subjects WHERE gallery_id = ? ON CONFLICT(id) DO UPDATE SET name = excluded.name')
        .run(now, galleryId);
      this.db.prepare('DELETE FROM templates WHERE subject_id IN (SELECT subject_id FROM staged_subjects WHERE gallery_id = ?)').run(galleryId);
      this.db
        .prepare('INSERT OR IGNORE INTO templates (id, subject_id, model_id, dim, vector, created_at) SELECT id, subject_id, model_id, dim, vector, ? FROM staged_templates WHERE gallery_id = ?')
        .run(now, galleryId);
      const upserts = this.db.prepare('INSERT OR IGNORE INTO gallery_members (gallery_id, subject_id) SELECT gallery_id, subject_id FROM staged_subjects WHERE gallery_id = ?').run(galleryId).changes;
      this.clearStaging(galleryId);
      this.finishSync(galleryId, part.toSeq);
      return { upserts, deletes: 0, skippedTemplates };
    })();
    if (result === undefined) return { state: 'staged', next: part.index + 1, skippedTemplates };
    this.indexes.clear();
    return { state: 'applied', result };
  }

  /** Snapshots part-way through staging: the gallery, its snapshot's sequence and the next part wanted. */
  snapshotProgress(): Record<string, { toSeq: number; part: number }> {
    const rows = this.db.prepare("SELECT key, value FROM meta WHERE key LIKE 'staging:%'").all() as { key: string; value: string }[];
    return Object.fromEntries(rows.map((r) => [r.key.slice(8), JSON.parse(r.value) as { toSeq: number; part: number }]));
  }

  private clearStaging(galleryId: string): void {
    this.db.prepare('DELETE FROM staged_subjects WHERE gallery_id = ?').run(galleryId);
    this.db.prepare('DELETE FROM staged_templates WHERE gallery_id = ?').run(galleryId);
    this.db.prepare('DELETE FROM meta WHERE key = ?').run(`staging:${galleryId}`);
  }

  /** Forget a gallery no longer assigned (its members stay if another gallery holds them). */
  dropGallery(galleryId: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM gallery_members WHERE gallery_id = ?').run(galleryId);
      this.db.prepare('DELETE FROM subjects WHERE id NOT IN (SELECT subject_id FROM gallery_members)').run();
      this.db.prepare('DELETE FROM meta WHERE key = ?').run(`seq:${galleryId}`);
      this.clearStaging(galleryId);
    })();
    this.indexes.clear();
  }

  /** Every template with its subject's name (for export and import between galleries). */
  exportTemplates(): { subject: string; modelId: string; vector: Float32Array; sourceSha256: string | null; quality: number | null }[] {
    const rows = this.db
      .prepare(
        `SELECT s.name AS subject, t.model_id AS modelId, t.vector, t.source_sha256 AS sourceSha256, t.quality
         FROM templates t JOIN subjects s ON s.id = t.subject_id ORDER BY s.name, t.created_at`,
      )
      .all() as { subject: string; modelId: string; vector: Buffer; sourceSha256: string | null; quality: number | null }[];
    return rows.map((r) => ({ ...r, vector: new Float32Array(r.vector.buffer.slice(r.vector.byteOffset, r.vector.byteOffset + r.vector.byteLength)) }));
  }

  /** Model ids that have templates here. */
  modelIds(): string[] {
    return (this.db.prepare('SELECT DISTINCT model_id AS m FROM templates ORDER BY m').all() as { m: string }[]).map((r) => r.m);
  }

  /**
   * Add a template. A gallery holds templates of one model: adding another model's is refused.
   * Returns false (and adds nothing) when the same source image is already enrolled for the subject.
   */
  addTemplate(subjectId: string, t: TemplateInput): { added: boolean; templateId?: string } {
    this.assertModel(t.modelId);
    if (t.sourceSha256 !== undefined) {
      const dup = this.db
        .prepare('SELECT id FROM templates WHERE subject_id = ? AND model_id = ? AND source_sha256 = ?')
        .get(subjectId, t.modelId, t.sourceSha256);
      if (dup) return { added: false };
    }
    const id = randomUUID();
    const blob = Buffer.from(t.vector.buffer, t.vector.byteOffset, t.vector.byteLength);
    this.db
      .prepare(
        `INSERT INTO templates (id, subject_id, model_id, dim, vector, source_sha256, quality, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(id, subjectId, t.modelId, t.vector.length, blob, t.sourceSha256 ?? null, t.quality ?? null, new Date().toISOString());
    this.indexes.get(t.modelId)?.add({ templateId: id, subjectId }, t.vector);
    return { added: true, templateId: id };
  }

  /**
   * Template hits for a query embedding, best first, among the templates of `modelId` only. A
   * standalone gallery holding another model's templates is refused (matching them is meaningless).
   */
  search(modelId: string, vector: Float32Array, k = 10): TemplateHit[] {
    if (!this.managedGallery) this.assertModel(modelId);
    return this.index(modelId).search(vector, k * 4);
  }

  /**
   * Ids of subjects that have templates, but none of `modelId`: those a switch to that embedder
   * would stop recognising.
   */
  subjectsWithoutModel(modelId: string): string[] {
    return (
      this.db
        .prepare(
          `SELECT DISTINCT subject_id AS id FROM templates t
           WHERE NOT EXISTS (SELECT 1 FROM templates u WHERE u.subject_id = t.subject_id AND u.model_id = ?) ORDER BY id`,
        )
        .all(modelId) as { id: string }[]
    ).map((r) => r.id);
  }

  /** Throw a clear ModelError when this gallery's templates come from another model. */
  assertModel(modelId: string): void {
    const others = this.modelIds().filter((m) => m !== modelId);
    if (others.length > 0) {
      throw new ModelError(
        `gallery ${this.path} holds templates of model ${others.join(', ')}, not ${modelId}: ` +
          'embeddings of different models cannot be compared (use that embedder, or re-enrol into a new gallery)',
        { mismatch: true },
      );
    }
  }

  private index(modelId: string): TemplateIndex {
    let index = this.indexes.get(modelId);
    if (index) return index;
    const rows = this.db
      .prepare('SELECT id, subject_id AS subjectId, dim, vector FROM templates WHERE model_id = ?')
      .all(modelId) as { id: string; subjectId: string; dim: number; vector: Buffer }[];
    const capacity = Math.max(16, rows.length);
    index = rows.length > this.exactSearchUpTo ? new SketchIndex(modelId, { capacity }) : new FlatIndex(modelId, rows[0]?.dim ?? 0, capacity);
    for (const r of rows) {
      const v = new Float32Array(r.vector.buffer.slice(r.vector.byteOffset, r.vector.byteOffset + r.vector.byteLength));
      index.add({ templateId: r.id, subjectId: r.subjectId }, v);
    }
    this.indexes.set(modelId, index);
    return index;
  }
}
