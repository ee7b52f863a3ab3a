import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { ConfigError, type EventMessage, type SelfTestSpec } from '@facefleet/protocol';
import pg from 'pg';
import { mosquittoPasswordHash } from '../mqtt/mosquitto-hash.js';
import { openCrop, sealCrop } from './crops.repository.js';
import { newDeviceCredentials, secretMatches } from './devices.repository.js';
import { hashSecret, newApiKey } from './keys.repository.js';
import {
  DEFAULT_GALLERY,
  type Crop,
  type CropsRepo,
  type DeviceRow,
  type DevicesRepo,
  type EventFilter,
  type EventRow,
  type EventsRepo,
  type GalleriesRepo,
  type Gates,
  type GalleryRow,
  type HubStore,
  type KeysRepo,
  type LeasesRepo,
  type LogEntry,
  type ModelRow,
  type ModelsRepo,
  type Role,
  type RolloutDeviceRow,
  type RolloutDeviceState,
  type RolloutRow,
  type RolloutsRepo,
  type RolloutState,
  type RolloutTarget,
  type SubjectPatch,
  type SubjectRow,
  type SubjectsRepo,
  type TemplateRow,
} from './ports.js';

/**
 * Forward-only migrations of the PostgreSQL store; `schema_migrations` records the applied ones.
 * The tables mirror the SQLite store (hub-db.ts, all its migrations folded into the first) with
 * PostgreSQL's own types. Columns that are sorted or compared in cursors use the "C" collation so
 * pages come in the same (byte) order as SQLite's, whatever the database's locale. JSON that is
 * read back is `json`, which keeps the text as written (key order included); event payloads,
 * never read back, are `jsonb` so they can be queried.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE api_keys (id text PRIMARY KEY, hash text NOT NULL UNIQUE, role text NOT NULL, created_at timestamptz NOT NULL, revoked_at timestamptz);
   CREATE TABLE subjects (
     id text COLLATE "C" PRIMARY KEY, name text COLLATE "C" NOT NULL, consent_at timestamptz, purpose text, delete_after timestamptz,
     created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
   CREATE INDEX subjects_name ON subjects (name, id);
   CREATE INDEX subjects_delete_after ON subjects (delete_after) WHERE delete_after IS NOT NULL;
   CREATE TABLE templates (
     id text PRIMARY KEY, subject_id text COLLATE "C" NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
     model_id text COLLATE "C" NOT NULL, vector bytea NOT NULL, quality double precision, source_sha256 text COLLATE "C", created_at timestamptz NOT NULL);
   CREATE INDEX templates_subject ON templates (subject_id);
   CREATE UNIQUE INDEX templates_source ON templates (subject_id, model_id, source_sha256);
   CREATE TABLE galleries (
     id text COLLATE "C" PRIMARY KEY, name text COLLATE "C" NOT NULL UNIQUE, is_default boolean NOT NULL DEFAULT false,
     head_seq bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL);
   CREATE TABLE gallery_members (
     gallery_id text COLLATE "C" NOT NULL REFERENCES galleries(id) ON DELETE CASCADE, subject_id text COLLATE "C" NOT NULL,
     PRIMARY KEY (gallery_id, subject_id));
   CREATE INDEX gallery_members_subject ON gallery_members (subject_id);
   CREATE TABLE gallery_log (
     gallery_id text NOT NULL, seq bigint NOT NULL, op text NOT NULL, subject_id text NOT NULL, at timestamptz NOT NULL,
     PRIMARY KEY (gallery_id, seq));
   CREATE TABLE devices (
     id text COLLATE "C" PRIMARY KEY, name text NOT NULL, secret_hash text NOT NULL, broker_hash text, created_at timestamptz NOT NULL,
     revoked_at timestamptz, online boolean NOT NULL DEFAULT false, last_seen timestamptz, agent_version text, models json, outbox_depth integer);
   CREATE TABLE device_galleries (
     device_id text NOT NULL REFERENCES devices(id) ON DELETE CASCADE, gallery_id text COLLATE "C" NOT NULL REFERENCES galleries(id) ON DELETE CASCADE,
     PRIMARY KEY (device_id, gallery_id));
   CREATE INDEX device_galleries_gallery ON device_galleries (gallery_id);
   CREATE TABLE device_gallery_seq (device_id text NOT NULL, gallery_id text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (device_id, gallery_id));
   CREATE TABLE events (
     id text COLLATE "C" PRIMARY KEY, device_id text NOT NULL, type text NOT NULL, subject_id text, subject text,
     similarity double precision NOT NULL, at timestamptz NOT NULL, received_at timestamptz NOT NULL, payload jsonb NOT NULL);
   CREATE INDEX events_at ON events (at DESC, id DESC);
   CREATE INDEX events_subject ON events (subject_id);
   CREATE INDEX events_device ON events (device_id);
   CREATE TABLE models (
     id text COLLATE "C" PRIMARY KEY, kind text COLLATE "C" NOT NULL, sha256 text NOT NULL, bytes bigint NOT NULL, manifest json NOT NULL,
     self_test json, key_id text, signature text, source text NOT NULL, path text NOT NULL, created_at timestamptz NOT NULL);
   CREATE TABLE device_models (
     device_id text NOT NULL REFERENCES devices(id) ON DELETE CASCADE, kind text NOT NULL, model_id text NOT NULL REFERENCES models(id),
     rollout_id text, PRIMARY KEY (device_id, kind));
   CREATE TABLE rollouts (
     id text COLLATE "C" PRIMARY KEY, model_id text NOT NULL REFERENCES models(id), kind text NOT NULL, target json NOT NULL, waves json NOT NULL,
     gates json NOT NULL, state text NOT NULL, wave integer NOT NULL, reason text, wave_done_at timestamptz,
     created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
   CREATE INDEX rollouts_open ON rollouts (created_at) WHERE state IN ('running', 'paused', 'halted');
   CREATE TABLE rollout_devices (
     rollout_id text NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE, device_id text NOT NULL, position integer NOT NULL, wave integer NOT NULL,
     state text NOT NULL, reason text, previous_model_id text, updated_at timestamptz NOT NULL, PRIMARY KEY (rollout_id, device_id));
   CREATE TABLE face_crops (
     subject_id text COLLATE "C" NOT NULL REFERENCES subjects(id) ON DELETE CASCADE, source_sha256 text COLLATE "C" NOT NULL,
     width integer NOT NULL, height integer NOT NULL, iv bytea NOT NULL, tag bytea NOT NULL, data bytea NOT NULL, created_at timestamptz NOT NULL,
     PRIMARY KEY (subject_id, source_sha256));
   CREATE TABLE leases (name text PRIMARY KEY, holder text NOT NULL, expires_at timestamptz NOT NULL);`,
];

/** The schema version this hub migrates PostgreSQL to. */
export const PG_SCHEMA_VERSION = MIGRATIONS.length;

// ---------------------------------------------------------------------------------------------
// Connections

const INT8_OID = 20;
const TIMESTAMPTZ_OID = 1184;
const parseTimestamptz = pg.types.getTypeParser(TIMESTAMPTZ_OID) as (v: string) => Date;

/**
 * Per-pool type parsers (not pg's global ones, which other code in the process may rely on):
 * bigint counts and sequences as JS numbers (they stay far below 2^53), and timestamptz as the
 * ISO string `Date.toISOString()` gives, the form the SQLite store stores and returns.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): ((v: string) => unknown) => {
    if (oid === INT8_OID) return (v: string) => Number(v);
    if (oid === TIMESTAMPTZ_OID) return (v: string) => parseTimestamptz(v).toISOString();
    return pg.types.getTypeParser(oid, format) as (v: string) => unknown;
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** A database URL for logs and errors: the password (in the userinfo or a parameter) masked. */
export function maskDatabaseUrl(url: string): string {
  const u = new URL(url);
  if (u.password !== '') u.password = '***';
  for (const p of ['password', 'sslpassword']) if (u.searchParams.has(p)) u.searchParams.set(p, '***');
  return u.toString();
}

/** Checks the URL's form up front, so a typo gives a clear message rather than a driver stack. */
function checkUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError('the database URL is not a URL; expected postgres://user:password@host:5432/database');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new ConfigError(`the database URL must start with postgres:// or postgresql:// (got ${u.protocol}//)`);
  }
}

/** Schema names are spliced into SQL and connection options, so only plain identifiers pass. */
function checkSchema(schema: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new ConfigError(`database schema "${schema}" must be lower-case letters, digits and "_" (up to 63, not starting with a digit)`);
  }
}

/**
 * The pool's settings for `url`. With a schema, search_path goes in the connection's startup
 * options so it holds on every pooled connection from its first statement (no SET to forget
 * after a reconnect); options already in the URL would replace ours (pg lets the URL win), so
 * they are merged and taken out of it. A URL without a user name connects as the OS user, as
 * libpq does (pg would otherwise send none when $USER is unset, as in containers and services).
 */
export function pgPoolConfig(url: string, schema?: string): pg.PoolConfig {
  const u = new URL(url);
  if (u.username === '' && !process.env.PGUSER && !process.env.USER) u.username = encodeURIComponent(userInfo().username);
  const config: pg.PoolConfig = { types, application_name: 'facefleet-hub', connectionTimeoutMillis: 10_000, max: 10 };
  if (schema === undefined) return { ...config, connectionString: u.toString() };
  const existing = u.searchParams.get('options');
  u.searchParams.delete('options');
  return { ...config, connectionString: u.toString(), options: [existing, `-c search_path=${schema}`].filter((o) => o).join(' ') };
}

/** The reason of a connection failure in one line (Node's AggregateError has an empty message). */
export function reasonOf(err: unknown): string {
  if (err instanceof AggregateError && err.message === '') return err.errors.map((e: unknown) => reasonOf(e)).join('; ');
  if (err instanceof Error) return (err.message || (err as { code?: string }).code || err.name).split('\n')[0]!;
  return String(err);
}

/** Conflicts between concurrent transactions that succeed when simply run again. */
const RETRYABLE = new Set(['40001', '40P01']); // serialization_failure, deadlock_detected
const TX_ATTEMPTS = 3;

interface Queryable {
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
}

/** Typed helpers over a pool or a transaction's client. */
class Sql {
  constructor(protected readonly q: Queryable) {}

  async rows<R>(text: string, values: unknown[] = []): Promise<R[]> {
    return (await this.q.query(text, values)).rows as R[];
  }

  async row<R>(text: string, values: unknown[] = []): Promise<R | undefined> {
    return (await this.rows<R>(text, values))[0];
  }

  /** Runs a statement; the number of rows it touched. */
  async run(text: string, values: unknown[] = []): Promise<number> {
    return (await this.q.query(text, values)).rowCount ?? 0;
  }
}

/** The pool, plus transactions on one of its clients. */
export class PgDb extends Sql {
  constructor(readonly pool: pg.Pool) {
    super(pool);
  }

  /**
   * Runs `fn` in a transaction on one pooled client, always released (destroyed if even the
   * ROLLBACK failed, as the connection is then unusable). Deadlocks and serialization failures,
   * which concurrent replicas can cause, are retried: `fn` must do nothing but database work.
   */
  async tx<T>(fn: (t: Sql) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const out = await fn(new Sql(client));
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: unknown) => {
          broken = e instanceof Error ? e : new Error(String(e));
        });
        if (attempt < TX_ATTEMPTS && broken === undefined && RETRYABLE.has((err as { code?: string }).code ?? '')) continue;
        throw err;
      } finally {
        client.release(broken);
      }
    }
  }
}

/**
 * Applies the pending migrations under a session advisory lock, so hub replicas starting together
 * take turns: the first migrates, the others then find nothing to do. Each migration commits with
 * its schema_migrations row. The lock key names the schema, so separate schemas do not wait.
 */
async function migrate(client: pg.PoolClient, schema: string | undefined, log: (m: string) => void): Promise<void> {
  const lockKey = `facefleet-hub:migrate:${schema ?? '(search_path)'}`;
  await client.query('SELECT pg_advisory_lock(hashtext($1))', [lockKey]);
  try {
    // Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when the schema exists.
    if (schema !== undefined && (await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 0) {
      await client.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`);
      log(`created database schema ${schema}`);
    }
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const done = Number((await client.query<{ v: number }>('SELECT COALESCE(max(version), 0) AS v FROM schema_migrations')).rows[0]?.v ?? 0);
    if (done > MIGRATIONS.length) throw new ConfigError(`the hub database schema is at version ${done}, newer than this hub (${MIGRATIONS.length}); upgrade the hub`);
    for (let v = done; v < MIGRATIONS.length; v++) await applyMigration(client, v, log);
  } finally {
    // Should this fail, the connection is dropped (released as broken), which frees the lock too.
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]).catch(() => undefined);
  }
}

async function applyMigration(client: pg.PoolClient, index: number, log: (m: string) => void): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(MIGRATIONS[index]!);
    await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [index + 1]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
  log(`database migration ${index + 1} applied`);
}

export interface PgOptions {
  /** A schema of its own (created when missing); by default the connection's search_path. */
  schema?: string;
  log?: (m: string) => void;
}

/**
 * A pool on a migrated database with the default gallery in place. Fails with one clear line
 * when the server cannot be reached or the schema cannot be migrated; never shows the password.
 */
export async function connectPostgres(url: string, opts: PgOptions = {}): Promise<{ db: PgDb; location: string }> {
  checkUrl(url);
  if (opts.schema !== undefined) checkSchema(opts.schema);
  const log = opts.log ?? (() => undefined);
  const location = maskDatabaseUrl(url);
  const pool = new pg.Pool(pgPoolConfig(url, opts.schema));
  // An idle client whose server went away emits here; unheard, it would end the process.
  pool.on('error', (err) => log(`PostgreSQL connection lost (${reasonOf(err)}); the pool reconnects`));
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new ConfigError(`cannot reach PostgreSQL at ${location}: ${reasonOf(err)}`, { cause: err });
  }
  try {
    await migrate(client, opts.schema, log);
    await client.query("INSERT INTO galleries (id, name, is_default, created_at) VALUES ($1, 'default', true, $2) ON CONFLICT DO NOTHING", [DEFAULT_GALLERY, new Date().toISOString()]);
    client.release();
  } catch (err) {
    client.release(true);
    await pool.end().catch(() => undefined);
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`cannot migrate the hub database at ${location}: ${reasonOf(err)}`, { cause: err });
  }
  return { db: new PgDb(pool), location };
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** `($1, $2), ($3, $4)` for `rows` tuples of `width` parameters. */
function tuples(rows: number, width: number): string {
  return Array.from({ length: rows }, (_, r) => `(${Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`).join(', ')})`).join(', ');
}

const now = (): string => new Date().toISOString();
const likeEscape = (s: string): string => s.replace(/[%_\\]/g, (c) => `\\${c}`);
const toBytes = (v: Float32Array): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
/** A copy, so the Float32Array is aligned whatever the Buffer's offset in pg's receive buffer. */
const toVector = (b: Buffer): Float32Array => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

/** `col = $n` assignments for the defined fields of a patch, plus updated_at. */
function assignments(fields: [column: string, value: unknown][]): { set: string; values: unknown[] } {
  const cols: [string, unknown][] = [...fields.filter(([, v]) => v !== undefined), ['updated_at', now()]];
  return { set: cols.map(([c], i) => `${c} = $${i + 1}`).join(', '), values: cols.map(([, v]) => v) };
}

// ---------------------------------------------------------------------------------------------
// Repositories

class PgKeys implements KeysRepo {
  constructor(private readonly db: PgDb) {}

  async create(role: Role): Promise<{ id: string; key: string; role: Role }> {
    const id = randomUUID();
    const key = newApiKey();
    await this.db.run('INSERT INTO api_keys (id, hash, role, created_at) VALUES ($1, $2, $3, $4)', [id, hashSecret(key), role, now()]);
    return { id, key, role };
  }

  async find(key: string): Promise<{ id: string; role: Role } | undefined> {
    return this.db.row('SELECT id, role FROM api_keys WHERE hash = $1 AND revoked_at IS NULL', [hashSecret(key)]);
  }
}

const SUBJECT = `SELECT s.id, s.name, s.consent_at AS "consentAt", s.purpose, s.delete_after AS "deleteAfter",
  s.created_at AS "createdAt", s.updated_at AS "updatedAt", (SELECT count(*) FROM templates t WHERE t.subject_id = s.id) AS templates
  FROM subjects s`;

class PgSubjects implements SubjectsRepo {
  constructor(private readonly db: PgDb) {}

  async create(s: { name: string; consentAt?: string | null; purpose?: string | null; deleteAfter?: string | null }): Promise<SubjectRow> {
    const id = randomUUID();
    const at = now();
    await this.db.run('INSERT INTO subjects (id, name, consent_at, purpose, delete_after, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)', [
      id,
      s.name,
      s.consentAt ?? null,
      s.purpose ?? null,
      s.deleteAfter ?? null,
      at,
    ]);
    return (await this.get(id))!;
  }

  async get(id: string): Promise<SubjectRow | undefined> {
    return this.db.row<SubjectRow>(`${SUBJECT} WHERE s.id = $1`, [id]);
  }

  /** Like SQLite's LIKE: `%` and `_` in the search are literal, ASCII letters match either case. */
  async list(q: { search?: string; limit: number; after?: { name: string; id: string } }): Promise<SubjectRow[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    if (q.search) {
      values.push(`%${likeEscape(q.search)}%`);
      where.push(`s.name ILIKE $${values.length} ESCAPE '\\'`);
    }
    if (q.after) {
      values.push(q.after.name, q.after.id);
      where.push(`(s.name, s.id) > ($${values.length - 1}, $${values.length})`);
    }
    values.push(q.limit);
    return this.db.rows<SubjectRow>(`${SUBJECT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY s.name, s.id LIMIT $${values.length}`, values);
  }

  async update(id: string, patch: SubjectPatch): Promise<SubjectRow | undefined> {
    const { set, values } = assignments([
      ['name', patch.name],
      ['consent_at', patch.consentAt],
      ['purpose', patch.purpose],
      ['delete_after', patch.deleteAfter],
    ]);
    await this.db.run(`UPDATE subjects SET ${set} WHERE id = $${values.length + 1}`, [...values, id]);
    return this.get(id);
  }

  async expired(at: Date): Promise<string[]> {
    const rows = await this.db.rows<{ id: string }>('SELECT id FROM subjects WHERE delete_after IS NOT NULL AND delete_after <= $1 ORDER BY id', [at.toISOString()]);
    return rows.map((r) => r.id);
  }

  /** Deduplicated by (subject, model, source image) with a unique index, so racing replicas agree. */
  async addTemplate(t: { subjectId: string; modelId: string; vector: Float32Array; quality: number; sourceSha256: string }): Promise<{ id: string; added: boolean }> {
    return this.db.tx(async (tx) => {
      const inserted = await tx.row<{ id: string }>(
        `INSERT INTO templates (id, subject_id, model_id, vector, quality, source_sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (subject_id, model_id, source_sha256) DO NOTHING RETURNING id`,
        [randomUUID(), t.subjectId, t.modelId, toBytes(t.vector), t.quality, t.sourceSha256, now()],
      );
      if (inserted === undefined) {
        const dup = await tx.row<{ id: string }>('SELECT id FROM templates WHERE subject_id = $1 AND model_id = $2 AND source_sha256 = $3', [t.subjectId, t.modelId, t.sourceSha256]);
        return { id: dup!.id, added: false };
      }
      await tx.run('UPDATE subjects SET updated_at = $1 WHERE id = $2', [now(), t.subjectId]);
      return { id: inserted.id, added: true };
    });
  }

  /** One array parameter, so any number of ids fits in one query. */
  async templates(subjectIds: readonly string[]): Promise<TemplateRow[]> {
    if (subjectIds.length === 0) return [];
    const rows = await this.db.rows<Omit<TemplateRow, 'vector'> & { vector: Buffer }>(
      'SELECT id, subject_id AS "subjectId", model_id AS "modelId", vector, quality FROM templates WHERE subject_id = ANY($1::text[])',
      [subjectIds],
    );
    return rows.map((r) => ({ ...r, vector: toVector(r.vector) }));
  }

  async names(subjectIds: readonly string[]): Promise<Map<string, string>> {
    if (subjectIds.length === 0) return new Map();
    const rows = await this.db.rows<{ id: string; name: string }>('SELECT id, name FROM subjects WHERE id = ANY($1::text[])', [subjectIds]);
    return new Map(rows.map((r) => [r.id, r.name]));
  }

  async count(): Promise<{ subjects: number; templates: number }> {
    return (await this.db.row<{ subjects: number; templates: number }>('SELECT (SELECT count(*) FROM subjects) AS subjects, (SELECT count(*) FROM templates) AS templates'))!;
  }

  async templateModelsExcept(modelId: string): Promise<string[]> {
    return (await this.db.rows<{ m: string }>('SELECT DISTINCT model_id AS m FROM templates WHERE model_id <> $1 ORDER BY model_id', [modelId])).map((r) => r.m);
  }

  async templateSources(modelId: string): Promise<{ subjectId: string; sourceSha256: string }[]> {
    return this.db.rows(
      'SELECT subject_id AS "subjectId", source_sha256 AS "sourceSha256" FROM templates WHERE model_id = $1 AND source_sha256 IS NOT NULL ORDER BY subject_id, source_sha256',
      [modelId],
    );
  }
}

const GALLERY = 'SELECT id, name, is_default AS "isDefault", head_seq AS "headSeq", created_at AS "createdAt" FROM galleries';

/**
 * Appends one change to a gallery's log inside a transaction. The UPDATE takes the gallery's row
 * lock until commit, so concurrent appends (on any replica) get consecutive, distinct sequences.
 */
async function appendOne(t: Sql, galleryId: string, op: LogEntry['op'], subjectId: string): Promise<number> {
  const r = await t.row<{ seq: number }>(
    `WITH head AS (UPDATE galleries SET head_seq = head_seq + 1 WHERE id = $1 RETURNING head_seq)
     INSERT INTO gallery_log (gallery_id, seq, op, subject_id, at) SELECT $1, head_seq, $2, $3, $4 FROM head RETURNING seq`,
    [galleryId, op, subjectId, now()],
  );
  if (r === undefined) throw new Error(`no gallery with id ${galleryId}`);
  return r.seq;
}

/**
 * Appends to several galleries, locking them in one global (sorted) order so two transactions
 * touching the same galleries cannot deadlock; the heads come back in the order asked.
 */
async function appendAll(t: Sql, galleryIds: readonly string[], op: LogEntry['op'], subjectId: string): Promise<{ galleryId: string; seq: number }[]> {
  const order = galleryIds.map((galleryId, i) => ({ galleryId, i })).sort((a, b) => (a.galleryId < b.galleryId ? -1 : a.galleryId > b.galleryId ? 1 : a.i - b.i));
  const seqs = new Array<number>(galleryIds.length);
  for (const { galleryId, i } of order) seqs[i] = await appendOne(t, galleryId, op, subjectId);
  return galleryIds.map((galleryId, i) => ({ galleryId, seq: seqs[i]! }));
}

class PgGalleries implements GalleriesRepo {
  constructor(private readonly db: PgDb) {}

  async create(name: string): Promise<GalleryRow> {
    return (await this.db.row<GalleryRow>(
      'INSERT INTO galleries (id, name, created_at) VALUES ($1, $2, $3) RETURNING id, name, is_default AS "isDefault", head_seq AS "headSeq", created_at AS "createdAt"',
      [randomUUID(), name, now()],
    ))!;
  }

  async get(id: string): Promise<GalleryRow | undefined> {
    return this.db.row<GalleryRow>(`${GALLERY} WHERE id = $1`, [id]);
  }

  async list(): Promise<GalleryRow[]> {
    return this.db.rows<GalleryRow>(`${GALLERY} ORDER BY is_default DESC, name`);
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM galleries WHERE id = $1 AND NOT is_default', [id])) > 0;
  }

  async galleriesOf(subjectId: string): Promise<string[]> {
    const rows = await this.db.rows<{ g: string }>('SELECT gallery_id AS g FROM gallery_members WHERE subject_id = $1 ORDER BY gallery_id', [subjectId]);
    return [DEFAULT_GALLERY, ...rows.map((r) => r.g)];
  }

  async members(galleryId: string): Promise<string[]> {
    if (galleryId === DEFAULT_GALLERY) return (await this.db.rows<{ id: string }>('SELECT id FROM subjects ORDER BY id')).map((r) => r.id);
    return (await this.db.rows<{ s: string }>('SELECT subject_id AS s FROM gallery_members WHERE gallery_id = $1 ORDER BY subject_id', [galleryId])).map((r) => r.s);
  }

  async addMember(galleryId: string, subjectId: string): Promise<number | null> {
    return this.db.tx(async (t) => {
      const added = await t.run('INSERT INTO gallery_members (gallery_id, subject_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [galleryId, subjectId]);
      return added > 0 ? appendOne(t, galleryId, 'upsert', subjectId) : null;
    });
  }

  async removeMember(galleryId: string, subjectId: string): Promise<number | null> {
    return this.db.tx(async (t) => {
      const removed = await t.run('DELETE FROM gallery_members WHERE gallery_id = $1 AND subject_id = $2', [galleryId, subjectId]);
      return removed > 0 ? appendOne(t, galleryId, 'delete', subjectId) : null;
    });
  }

  async append(galleryIds: readonly string[], op: LogEntry['op'], subjectId: string): Promise<{ galleryId: string; seq: number }[]> {
    if (galleryIds.length === 0) return [];
    return this.db.tx((t) => appendAll(t, galleryIds, op, subjectId));
  }

  /** The subject row goes first (templates and crops cascade); its memberships come back from their DELETE. */
  async eraseSubject(subjectId: string): Promise<{ galleryId: string; seq: number }[] | undefined> {
    return this.db.tx(async (t) => {
      if ((await t.run('DELETE FROM subjects WHERE id = $1', [subjectId])) === 0) return undefined;
      const member = await t.rows<{ g: string }>('DELETE FROM gallery_members WHERE subject_id = $1 RETURNING gallery_id AS g', [subjectId]);
      const galleries = [DEFAULT_GALLERY, ...member.map((r) => r.g).sort()];
      return appendAll(t, galleries, 'delete', subjectId);
    });
  }

  async since(galleryId: string, seq: number, limit: number): Promise<LogEntry[]> {
    return this.db.rows<LogEntry>('SELECT seq, op, subject_id AS "subjectId" FROM gallery_log WHERE gallery_id = $1 AND seq > $2 ORDER BY seq LIMIT $3', [galleryId, seq, limit]);
  }

  async head(galleryId: string): Promise<number> {
    return (await this.db.row<{ h: number }>('SELECT head_seq AS h FROM galleries WHERE id = $1', [galleryId]))?.h ?? 0;
  }

  async compactLogs(keep: number): Promise<number> {
    return this.db.run('DELETE FROM gallery_log l USING galleries g WHERE g.id = l.gallery_id AND l.seq <= g.head_seq - $1', [keep]);
  }
}

const DEVICE = `SELECT id, name, created_at AS "createdAt", revoked_at AS "revokedAt", online, last_seen AS "lastSeen",
  agent_version AS "agentVersion", models, outbox_depth AS "outboxDepth" FROM devices`;

/** A device's galleries as an array: its assignments, or the default gallery when it has none. */
const ASSIGNED = `COALESCE((SELECT array_agg(dg.gallery_id ORDER BY dg.gallery_id) FROM device_galleries dg WHERE dg.device_id = d.id), ARRAY['${DEFAULT_GALLERY}'])`;

class PgDevices implements DevicesRepo {
  constructor(private readonly db: PgDb) {}

  async create(name: string): Promise<{ device: DeviceRow; secret: string }> {
    const { id, secret } = newDeviceCredentials();
    await this.db.run('INSERT INTO devices (id, name, secret_hash, broker_hash, created_at) VALUES ($1, $2, $3, $4, $5)', [
      id,
      name,
      hashSecret(secret),
      mosquittoPasswordHash(secret),
      now(),
    ]);
    return { device: (await this.get(id))!, secret };
  }

  async get(id: string): Promise<DeviceRow | undefined> {
    return this.db.row<DeviceRow>(`${DEVICE} WHERE id = $1`, [id]);
  }

  async list(): Promise<DeviceRow[]> {
    return this.db.rows<DeviceRow>(`${DEVICE} ORDER BY created_at, id`);
  }

  async verify(id: string, secret: string): Promise<boolean> {
    const r = await this.db.row<{ h: string }>('SELECT secret_hash AS h FROM devices WHERE id = $1 AND revoked_at IS NULL', [id]);
    return r !== undefined && secretMatches(r.h, secret);
  }

  async rename(id: string, name: string): Promise<void> {
    await this.db.run('UPDATE devices SET name = $1 WHERE id = $2', [name, id]);
  }

  async revoke(id: string): Promise<boolean> {
    return (await this.db.run('UPDATE devices SET revoked_at = $1, online = false WHERE id = $2 AND revoked_at IS NULL', [now(), id])) > 0;
  }

  async setOnline(id: string, online: boolean, agentVersion?: string): Promise<void> {
    await this.db.run('UPDATE devices SET online = $1, last_seen = $2, agent_version = COALESCE($3, agent_version) WHERE id = $4', [online, now(), agentVersion ?? null, id]);
  }

  async setStatus(id: string, s: { models: { detector: string; embedder: string }; outboxDepth: number; agentVersion: string; galleries?: Record<string, number> }): Promise<void> {
    const seqs = Object.entries(s.galleries ?? {});
    await this.db.tx(async (t) => {
      await t.run('UPDATE devices SET last_seen = $1, models = $2, outbox_depth = $3, agent_version = $4 WHERE id = $5', [now(), JSON.stringify(s.models), s.outboxDepth, s.agentVersion, id]);
      if (seqs.length === 0) return;
      await t.run(
        `INSERT INTO device_gallery_seq (device_id, gallery_id, seq) SELECT $1, g, n FROM unnest($2::text[], $3::bigint[]) AS u(g, n)
         ON CONFLICT (device_id, gallery_id) DO UPDATE SET seq = excluded.seq`,
        [id, seqs.map(([g]) => g), seqs.map(([, n]) => n)],
      );
    });
  }

  async galleries(id: string): Promise<string[]> {
    const rows = await this.db.rows<{ g: string }>('SELECT gallery_id AS g FROM device_galleries WHERE device_id = $1 ORDER BY gallery_id', [id]);
    return rows.length > 0 ? rows.map((r) => r.g) : [DEFAULT_GALLERY];
  }

  async setGalleries(id: string, galleryIds: readonly string[]): Promise<void> {
    await this.db.tx(async (t) => {
      await t.run('DELETE FROM device_galleries WHERE device_id = $1', [id]);
      if (galleryIds.length > 0) await t.run('INSERT INTO device_galleries (device_id, gallery_id) SELECT $1, g FROM unnest($2::text[]) AS u(g)', [id, galleryIds]);
    });
  }

  async devicesWithGallery(galleryId: string): Promise<string[]> {
    const rows = await this.db.rows<{ id: string }>(`SELECT d.id FROM devices d WHERE d.revoked_at IS NULL AND $1 = ANY(${ASSIGNED}) ORDER BY d.created_at, d.id`, [galleryId]);
    return rows.map((r) => r.id);
  }

  async seqs(id: string): Promise<Record<string, number>> {
    const rows = await this.db.rows<{ g: string; seq: number }>('SELECT gallery_id AS g, seq FROM device_gallery_seq WHERE device_id = $1', [id]);
    return Object.fromEntries(rows.map((r) => [r.g, r.seq]));
  }

  async brokerAccounts(): Promise<{ id: string; brokerHash: string | null; galleries: string[] }[]> {
    return this.db.rows(`SELECT d.id, d.broker_hash AS "brokerHash", ${ASSIGNED} AS galleries FROM devices d WHERE d.revoked_at IS NULL ORDER BY d.id`);
  }
}

/** Rows per INSERT: 9 parameters each stays well under PostgreSQL's 65535 per statement. */
const EVENT_CHUNK = 1000;
const EVENT_COLUMNS = 9;

class PgEvents implements EventsRepo {
  constructor(private readonly db: PgDb) {}

  /**
   * One multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING id per chunk, all in one
   * transaction. An id comes back only when this call stored it; when the batch repeats an id,
   * only its first occurrence counts as stored (as with SQLite's row-by-row INSERT OR IGNORE).
   */
  async insertMany(events: readonly EventMessage[]): Promise<boolean[]> {
    if (events.length === 0) return [];
    const receivedAt = now();
    const stored = await this.db.tx(async (t) => {
      const ids = new Set<string>();
      for (let i = 0; i < events.length; i += EVENT_CHUNK) {
        const chunk = events.slice(i, i + EVENT_CHUNK);
        const values = chunk.flatMap((e) => [e.id, e.deviceId, e.type, e.subjectId, e.subject, e.similarity, new Date(e.at).toISOString(), receivedAt, JSON.stringify(e)]);
        const rows = await t.rows<{ id: string }>(
          `INSERT INTO events (id, device_id, type, subject_id, subject, similarity, at, received_at, payload) VALUES ${tuples(chunk.length, EVENT_COLUMNS)}
           ON CONFLICT (id) DO NOTHING RETURNING id`,
          values,
        );
        for (const r of rows) ids.add(r.id);
      }
      return ids;
    });
    return events.map((e) => stored.delete(e.id));
  }

  async list(f: EventFilter, limit: number, after?: { at: string; id: string }): Promise<EventRow[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (clause: (n: number) => string, value: unknown): void => {
      values.push(value);
      where.push(clause(values.length));
    };
    if (f.device) add((n) => `device_id = $${n}`, f.device);
    if (f.subject) add((n) => `(subject_id = $${n} OR subject = $${n})`, f.subject);
    if (f.type) add((n) => `type = $${n}`, f.type);
    if (f.from) add((n) => `at >= $${n}`, f.from);
    if (f.to) add((n) => `at < $${n}`, f.to);
    if (after) {
      values.push(after.at, after.id);
      where.push(`(at, id) < ($${values.length - 1}, $${values.length})`);
    }
    values.push(limit);
    return this.db.rows<EventRow>(
      `SELECT id, device_id AS "deviceId", type, subject, subject_id AS "subjectId", similarity, at, received_at AS "receivedAt" FROM events
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT $${values.length}`,
      values,
    );
  }

  async count(): Promise<number> {
    return (await this.db.row<{ n: number }>('SELECT count(*) AS n FROM events'))!.n;
  }

  async purgeOlderThan(cutoff: string): Promise<number> {
    return this.db.run('DELETE FROM events WHERE at < $1', [cutoff]);
  }
}

const MODEL = `SELECT id, kind, sha256, bytes, manifest, self_test AS "selfTest", key_id AS "keyId", signature, source, path, created_at AS "createdAt" FROM models`;

class PgModels implements ModelsRepo {
  constructor(private readonly db: PgDb) {}

  async insert(m: Omit<ModelRow, 'createdAt'>): Promise<boolean> {
    const n = await this.db.run(
      `INSERT INTO models (id, kind, sha256, bytes, manifest, self_test, key_id, signature, source, path, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (id) DO NOTHING`,
      [m.id, m.kind, m.sha256, m.bytes, JSON.stringify(m.manifest), m.selfTest ? JSON.stringify(m.selfTest) : null, m.keyId, m.signature, m.source, m.path, now()],
    );
    return n > 0;
  }

  async get(id: string): Promise<ModelRow | undefined> {
    return this.db.row<ModelRow>(`${MODEL} WHERE id = $1`, [id]);
  }

  async list(): Promise<ModelRow[]> {
    return this.db.rows<ModelRow>(`${MODEL} ORDER BY kind, id`);
  }

  async setSigned(id: string, selfTest: SelfTestSpec, keyId: string, signature: string): Promise<void> {
    await this.db.run('UPDATE models SET self_test = $1, key_id = $2, signature = $3 WHERE id = $4', [JSON.stringify(selfTest), keyId, signature, id]);
  }

  async assigned(deviceId: string): Promise<Record<string, { modelId: string; rolloutId: string | null }>> {
    const rows = await this.db.rows<{ kind: string; modelId: string; rolloutId: string | null }>(
      'SELECT kind, model_id AS "modelId", rollout_id AS "rolloutId" FROM device_models WHERE device_id = $1',
      [deviceId],
    );
    return Object.fromEntries(rows.map((r) => [r.kind, { modelId: r.modelId, rolloutId: r.rolloutId }]));
  }

  async assign(deviceId: string, kind: string, modelId: string | null, rolloutId: string | null): Promise<void> {
    if (modelId === null) {
      await this.db.run('DELETE FROM device_models WHERE device_id = $1 AND kind = $2', [deviceId, kind]);
      return;
    }
    await this.db.run(
      `INSERT INTO device_models (device_id, kind, model_id, rollout_id) VALUES ($1, $2, $3, $4)
       ON CONFLICT (device_id, kind) DO UPDATE SET model_id = excluded.model_id, rollout_id = excluded.rollout_id`,
      [deviceId, kind, modelId, rolloutId],
    );
  }
}

const ROLLOUT = `SELECT id, model_id AS "modelId", kind, target, waves, gates, state, wave, reason, wave_done_at AS "waveDoneAt",
  created_at AS "createdAt", updated_at AS "updatedAt" FROM rollouts`;

class PgRollouts implements RolloutsRepo {
  constructor(private readonly db: PgDb) {}

  async create(r: { modelId: string; kind: string; target: RolloutTarget; waves: number[]; gates: Gates; devices: { deviceId: string; wave: number; previousModelId: string | null }[] }): Promise<RolloutRow> {
    const id = `ro-${randomUUID()}`;
    const at = now();
    return this.db.tx(async (t) => {
      await t.run(
        "INSERT INTO rollouts (id, model_id, kind, target, waves, gates, state, wave, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'running', 0, $7, $7)",
        [id, r.modelId, r.kind, JSON.stringify(r.target), JSON.stringify(r.waves), JSON.stringify(r.gates), at],
      );
      if (r.devices.length > 0) {
        await t.run(
          `INSERT INTO rollout_devices (rollout_id, device_id, position, wave, state, previous_model_id, updated_at)
           SELECT $1, d, p, w, 'pending', pm, $6 FROM unnest($2::text[], $3::int[], $4::int[], $5::text[]) AS u(d, p, w, pm)`,
          [id, r.devices.map((d) => d.deviceId), r.devices.map((_, i) => i), r.devices.map((d) => d.wave), r.devices.map((d) => d.previousModelId), at],
        );
      }
      return (await t.row<RolloutRow>(`${ROLLOUT} WHERE id = $1`, [id]))!;
    });
  }

  async get(id: string): Promise<RolloutRow | undefined> {
    return this.db.row<RolloutRow>(`${ROLLOUT} WHERE id = $1`, [id]);
  }

  async list(): Promise<RolloutRow[]> {
    return this.db.rows<RolloutRow>(`${ROLLOUT} ORDER BY created_at DESC, id`);
  }

  async open(): Promise<RolloutRow[]> {
    return this.db.rows<RolloutRow>(`${ROLLOUT} WHERE state IN ('running', 'paused', 'halted') ORDER BY created_at, id`);
  }

  async update(id: string, patch: { state?: RolloutState; wave?: number; reason?: string | null; waveDoneAt?: string | null }): Promise<void> {
    const { set, values } = assignments([
      ['state', patch.state],
      ['wave', patch.wave],
      ['reason', patch.reason],
      ['wave_done_at', patch.waveDoneAt],
    ]);
    await this.db.run(`UPDATE rollouts SET ${set} WHERE id = $${values.length + 1}`, [...values, id]);
  }

  async devices(id: string): Promise<RolloutDeviceRow[]> {
    return this.db.rows<RolloutDeviceRow>(
      `SELECT device_id AS "deviceId", position, wave, state, reason, previous_model_id AS "previousModelId", updated_at AS "updatedAt"
       FROM rollout_devices WHERE rollout_id = $1 ORDER BY position`,
      [id],
    );
  }

  async setDevice(id: string, deviceId: string, state: RolloutDeviceState, reason: string | null = null): Promise<void> {
    await this.db.run('UPDATE rollout_devices SET state = $1, reason = $2, updated_at = $3 WHERE rollout_id = $4 AND device_id = $5', [state, reason, now(), id, deviceId]);
  }
}

/** Face crops, sealed with AES-256-GCM exactly as in SQLite (so copied rows open with the same key). */
class PgCrops implements CropsRepo {
  constructor(
    private readonly db: PgDb,
    private readonly key: Buffer,
  ) {}

  async put(c: Crop): Promise<void> {
    const { iv, tag, data } = sealCrop(this.key, c);
    await this.db.run(
      `INSERT INTO face_crops (subject_id, source_sha256, width, height, iv, tag, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (subject_id, source_sha256) DO UPDATE SET width = excluded.width, height = excluded.height, iv = excluded.iv, tag = excluded.tag,
         data = excluded.data, created_at = excluded.created_at`,
      [c.subjectId, c.sourceSha256, c.width, c.height, iv, tag, data, now()],
    );
  }

  async get(subjectId: string, sourceSha256: string): Promise<Crop | undefined> {
    const r = await this.db.row<{ width: number; height: number; iv: Buffer; tag: Buffer; data: Buffer }>(
      'SELECT width, height, iv, tag, data FROM face_crops WHERE subject_id = $1 AND source_sha256 = $2',
      [subjectId, sourceSha256],
    );
    if (!r) return undefined;
    return { subjectId, sourceSha256, width: r.width, height: r.height, data: openCrop(this.key, subjectId, sourceSha256, r) };
  }

  async count(): Promise<number> {
    return (await this.db.row<{ n: number }>('SELECT count(*) AS n FROM face_crops'))!.n;
  }

  async missingFor(modelIds: readonly string[]): Promise<{ templates: number; missing: number }> {
    if (modelIds.length === 0) return { templates: 0, missing: 0 };
    return (await this.db.row<{ templates: number; missing: number }>(
      `SELECT count(*) AS templates, count(*) FILTER (WHERE c.subject_id IS NULL) AS missing FROM templates t
       LEFT JOIN face_crops c ON c.subject_id = t.subject_id AND c.source_sha256 = t.source_sha256 WHERE t.model_id = ANY($1::text[])`,
      [modelIds],
    ))!;
  }

  async sources(): Promise<{ subjectId: string; sourceSha256: string }[]> {
    return this.db.rows('SELECT subject_id AS "subjectId", source_sha256 AS "sourceSha256" FROM face_crops ORDER BY subject_id, source_sha256');
  }
}

/**
 * Leases on the database's clock (replicas' clocks may disagree; the server's is the one they
 * share). One statement takes the lease when free, expired, or already this holder's; RETURNING
 * yields a row only when it did, so there is no window between taking and checking.
 */
class PgLeases implements LeasesRepo {
  constructor(private readonly db: PgDb) {}

  async acquire(name: string, holder: string, ttlMs: number): Promise<boolean> {
    const r = await this.db.row(
      `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, now() + $3::double precision * interval '1 millisecond')
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE leases.holder = excluded.holder OR leases.expires_at < now()
       RETURNING holder`,
      [name, holder, ttlMs],
    );
    return r !== undefined;
  }

  async release(name: string, holder: string): Promise<void> {
    await this.db.run('DELETE FROM leases WHERE name = $1 AND holder = $2', [name, holder]);
  }

  async holder(name: string): Promise<{ holder: string; expiresAt: string } | undefined> {
    return this.db.row('SELECT holder, expires_at AS "expiresAt" FROM leases WHERE name = $1', [name]);
  }
}

/** The hub's store in PostgreSQL: one pool, shared by the repositories; several hubs may share the database. */
export class PostgresStore implements HubStore {
  readonly engine = 'postgres' as const;
  readonly keys: KeysRepo;
  readonly subjects: SubjectsRepo;
  readonly galleries: GalleriesRepo;
  readonly devices: DevicesRepo;
  readonly events: EventsRepo;
  readonly models: ModelsRepo;
  readonly rollouts: RolloutsRepo;
  readonly crops: CropsRepo;
  readonly leases: LeasesRepo;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly db: PgDb,
    readonly location: string,
    cropKey: Buffer,
  ) {
    this.keys = new PgKeys(db);
    this.subjects = new PgSubjects(db);
    this.galleries = new PgGalleries(db);
    this.devices = new PgDevices(db);
    this.events = new PgEvents(db);
    this.models = new PgModels(db);
    this.rollouts = new PgRollouts(db);
    this.crops = new PgCrops(db, cropKey);
    this.leases = new PgLeases(db);
  }

  /** Ends the pool (once; pg throws when a pool is ended twice). */
  close(): Promise<void> {
    this.closing ??= this.db.pool.end();
    return this.closing;
  }
}

/** Connect to PostgreSQL at `url` (migrating it, in `schema` when given) and open the hub's store there. */
export async function openPostgresStore(url: string, opts: { cropKey: Buffer; schema?: string; log?: (m: string) => void }): Promise<HubStore> {
  const { db, location } = await connectPostgres(url, { schema: opts.schema, log: opts.log });
  return new PostgresStore(db, location, opts.cropKey);
}
