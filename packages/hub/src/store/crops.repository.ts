import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { HubDb } from './hub-db.js';
import type { Crop, CropsRepo } from './ports.js';

export type { Crop } from './ports.js';

/** Seal a crop with AES-256-GCM; the subject and source image are bound in as associated data. */
export function sealCrop(key: Buffer, c: Crop): { iv: Buffer; tag: Buffer; data: Buffer } {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(`${c.subjectId}\u0000${c.sourceSha256}`));
  const data = Buffer.concat([cipher.update(c.data), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), data };
}

/** Open a sealed crop (throws when the key is wrong or the row was tampered with). */
export function openCrop(key: Buffer, subjectId: string, sourceSha256: string, r: { iv: Uint8Array; tag: Uint8Array; data: Uint8Array }): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, r.iv);
  decipher.setAAD(Buffer.from(`${subjectId}\u0000${sourceSha256}`));
  decipher.setAuthTag(r.tag);
  return Buffer.concat([decipher.update(r.data), decipher.final()]);
}

/**
 * Aligned face crops (112x112 RGB), kept only when the operator enables it, to re-embed the
 * gallery with a new embedder. Encrypted at rest with AES-256-GCM under the hub's crop key; the
 * subject and source image are bound in as associated data. Erasing a subject erases its crops
 * (foreign key cascade).
 */
export class SqliteCrops implements CropsRepo {
  constructor(
    private readonly db: HubDb,
    private readonly key: Buffer,
  ) {}

  async put(c: Crop): Promise<void> {
    const { iv, tag, data } = sealCrop(this.key, c);
    this.db
      .prepare('INSERT OR REPLACE INTO face_crops (subject_id, source_sha256, width, height, iv, tag, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(c.subjectId, c.sourceSha256, c.width, c.height, iv, tag, data, new Date().toISOString());
  }

  async get(subjectId: string, sourceSha256: string): Promise<Crop | undefined> {
    const r = this.db.prepare('SELECT width, height, iv, tag, data FROM face_crops WHERE subject_id = ? AND source_sha256 = ?').get(subjectId, sourceSha256) as
      | { width: number; height: number; iv: Buffer; tag: Buffer; data: Buffer }
      | undefined;
    if (!r) return undefined;
    return { subjectId, sourceSha256, width: r.width, height: r.height, data: openCrop(this.key, subjectId, sourceSha256, r) };
  }

  async count(): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM face_crops').get() as { n: number }).n;
  }

  /** Templates of `modelId` whose source image has no crop (they cannot be re-embedded). */
  async missingFor(modelIds: readonly string[]): Promise<{ templates: number; missing: number }> {
    if (modelIds.length === 0) return { templates: 0, missing: 0 };
    const marks = modelIds.map(() => '?').join(',');
    const r = this.db
      .prepare(
        `SELECT COUNT(*) AS templates, SUM(CASE WHEN c.subject_id IS NULL THEN 1 ELSE 0 END) AS missing FROM templates t
         LEFT JOIN face_crops c ON c.subject_id = t.subject_id AND c.source_sha256 = t.source_sha256 WHERE t.model_id IN (${marks})`,
      )
      .get(...modelIds) as { templates: number; missing: number | null };
    return { templates: r.templates, missing: r.missing ?? 0 };
  }

  /** Every (subject, source image) with a crop. */
  async sources(): Promise<{ subjectId: string; sourceSha256: string }[]> {
    return this.db.prepare('SELECT subject_id AS subjectId, source_sha256 AS sourceSha256 FROM face_crops ORDER BY subject_id').all() as { subjectId: string; sourceSha256: string }[];
  }
}
