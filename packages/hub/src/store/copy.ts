import { existsSync } from 'node:fs';
import { ConfigError } from '@facefleet/protocol';
import Database from 'better-sqlite3';
import { openHubDb } from './hub-db.js';
import { connectPostgres, reasonOf } from './postgres.js';

/** How a SQLite value becomes a PostgreSQL parameter. */
type Kind = 'text' | 'number' | 'bool' | 'time' | 'blob' | 'json';

interface TableCopy {
  table: string;
  columns: Record<string, Kind>;
  /** For tables whose rows the fresh target may hold already (written when a hub first opens it). */
  onConflict?: string;
}

const updateAll = (key: string, columns: readonly string[]): string =>
  `ON CONFLICT (${key}) DO UPDATE SET ${columns.filter((c) => c !== key).map((c) => `${c} = excluded.${c}`).join(', ')}`;

const GALLERY_COLUMNS: Record<string, Kind> = { id: 'text', name: 'text', is_default: 'bool', head_seq: 'number', created_at: 'time' };
const MODEL_COLUMNS: Record<string, Kind> = {
  id: 'text',
  kind: 'text',
  sha256: 'text',
  bytes: 'number',
  manifest: 'json',
  self_test: 'json',
  key_id: 'text',
  signature: 'text',
  source: 'text',
  path: 'text',
  created_at: 'time',
};

/**
 * The tables copied, parents before children (the foreign keys hold at every step). Leases are
 * not copied: they belong to running hub processes, and the SQLite hub is stopped. The events'
 * unused rowid_seq column has no PostgreSQL counterpart.
 */
const TABLES: readonly TableCopy[] = [
  { table: 'api_keys', columns: { id: 'text', hash: 'text', role: 'text', created_at: 'time', revoked_at: 'time' } },
  { table: 'subjects', columns: { id: 'text', name: 'text', consent_at: 'time', purpose: 'text', delete_after: 'time', created_at: 'time', updated_at: 'time' } },
  {
    table: 'templates',
    columns: { id: 'text', subject_id: 'text', model_id: 'text', vector: 'blob', quality: 'number', source_sha256: 'text', created_at: 'time' },
    // PostgreSQL enforces the dedupe SQLite's addTemplate does by hand; a duplicate from an old hub is dropped.
    onConflict: 'ON CONFLICT (subject_id, model_id, source_sha256) DO NOTHING',
  },
  // The default gallery exists in the target already; SQLite's row (with its head) replaces it.
  { table: 'galleries', columns: GALLERY_COLUMNS, onConflict: updateAll('id', Object.keys(GALLERY_COLUMNS)) },
  { table: 'gallery_members', columns: { gallery_id: 'text', subject_id: 'text' } },
  { table: 'gallery_log', columns: { gallery_id: 'text', seq: 'number', op: 'text', subject_id: 'text', at: 'time' } },
  {
    table: 'devices',
    columns: {
      id: 'text',
      name: 'text',
      secret_hash: 'text',
      broker_hash: 'text',
      created_at: 'time',
      revoked_at: 'time',
      online: 'bool',
      last_seen: 'time',
      agent_version: 'text',
      models: 'json',
      outbox_depth: 'number',
    },
  },
  { table: 'device_galleries', columns: { device_id: 'text', gallery_id: 'text' } },
  { table: 'device_gallery_seq', columns: { device_id: 'text', gallery_id: 'text', seq: 'number' } },
  {
    table: 'events',
    columns: { id: 'text', device_id: 'text', type: 'text', subject_id: 'text', subject: 'text', similarity: 'number', at: 'time', received_at: 'time', payload: 'json' },
  },
  // A hub started on the target registers the manifest's models; the SQLite rows (signed, self-tested) win.
  { table: 'models', columns: MODEL_COLUMNS, onConflict: updateAll('id', Object.keys(MODEL_COLUMNS)) },
  { table: 'device_models', columns: { device_id: 'text', kind: 'text', model_id: 'text', rollout_id: 'text' } },
  {
    table: 'rollouts',
    columns: {
      id: 'text',
      model_id: 'text',
      kind: 'text',
      target: 'json',
      waves: 'json',
      gates: 'json',
      state: 'text',
      wave: 'number',
      reason: 'text',
      wave_done_at: 'time',
      created_at: 'time',
      updated_at: 'time',
    },
  },
  {
    table: 'rollout_devices',
    columns: { rollout_id: 'text', device_id: 'text', position: 'number', wave: 'number', state: 'text', reason: 'text', previous_model_id: 'text', updated_at: 'time' },
  },
  {
    table: 'face_crops',
    columns: { subject_id: 'text', source_sha256: 'text', width: 'number', height: 'number', iv: 'blob', tag: 'blob', data: 'blob', created_at: 'time' },
  },
];

/** PostgreSQL takes at most 65535 parameters in one statement. */
const MAX_PARAMETERS = 65_535;

/**
 * Converts one SQLite value. Times stay text (PostgreSQL parses ISO strings, offsets included,
 * into timestamptz); JSON stays text (the json/jsonb column checks it); blobs go as bytea.
 */
function convert(value: unknown, kind: Kind): unknown {
  if (value === null || value === undefined) return null;
  return kind === 'bool' ? value === 1 || value === 1n || value === true : value;
}

/** The source file at the current schema: migrated in place first when an older hub wrote it. */
function openSource(sqlitePath: string): Database.Database {
  if (!existsSync(sqlitePath)) throw new ConfigError(`no SQLite hub database at ${sqlitePath}`);
  openHubDb(sqlitePath).close(); // applies pending migrations (and refuses a newer schema)
  return new Database(sqlitePath, { readonly: true, fileMustExist: true });
}

interface Target {
  run(text: string, values?: unknown[]): Promise<number>;
  row<R>(text: string, values?: unknown[]): Promise<R | undefined>;
}

/** Refuses a target that holds hub data: the copy would merge two hubs' histories. */
async function ensureEmpty(t: Target, where: string): Promise<void> {
  const n = (await t.row<Record<string, number>>(
    `SELECT (SELECT count(*) FROM subjects) AS subjects, (SELECT count(*) FROM devices) AS devices, (SELECT count(*) FROM events) AS events,
       (SELECT count(*) FROM galleries WHERE NOT is_default) AS galleries, (SELECT count(*) FROM api_keys) AS "API keys",
       (SELECT count(*) FROM rollouts) AS rollouts, (SELECT count(*) FROM face_crops) AS "face crops"`,
  ))!;
  const held = Object.entries(n).filter(([, count]) => count > 0);
  if (held.length > 0) {
    throw new ConfigError(`${where} already holds hub data (${held.map(([table, count]) => `${count} ${table}`).join(', ')}); copy into an empty database or another schema (--database-schema)`);
  }
}

/** Copies one table in batches of multi-row INSERTs; the number of rows written. */
async function copyTable(source: Database.Database, t: Target, spec: TableCopy, batch: number, log: (m: string) => void): Promise<number> {
  const columns = Object.keys(spec.columns);
  const kinds = Object.values(spec.columns);
  const size = Math.max(1, Math.min(batch, Math.floor(MAX_PARAMETERS / columns.length)));
  const insert = (rows: number): string =>
    `INSERT INTO ${spec.table} (${columns.join(', ')}) VALUES ${Array.from({ length: rows }, (_, r) => `(${columns.map((_, c) => `$${r * columns.length + c + 1}`).join(', ')})`).join(', ')} ${spec.onConflict ?? ''}`;
  const read = source.prepare(`SELECT ${columns.join(', ')} FROM ${spec.table} ORDER BY rowid`).raw(true);
  let pending: unknown[][] = [];
  let done = 0;
  let written = 0;
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    written += await t.run(insert(pending.length), pending.flat());
    done += pending.length;
    pending = [];
    if (done % (size * 20) === 0) log(`${spec.table}: ${done} rows…`);
  };
  try {
    for (const row of read.iterate() as IterableIterator<unknown[]>) {
      pending.push(row.map((v, i) => convert(v, kinds[i]!)));
      if (pending.length === size) await flush();
    }
    await flush();
  } catch (err) {
    throw new Error(`copying table ${spec.table} failed near row ${done + 1}: ${reasonOf(err)}`, { cause: err });
  }
  const skipped = done - written;
  log(`${spec.table}: ${written} rows${skipped > 0 && spec.onConflict?.includes('DO NOTHING') ? ` (${skipped} duplicates left out)` : ''}`);
  return written;
}

/**
 * Copies a SQLite hub database into PostgreSQL (migrated first, in `schema` when given), table
 * by table in one PostgreSQL transaction: it lands whole or not at all. SQLite is read in one
 * read transaction, a consistent snapshot even if a hub still writes to it. Refuses a target
 * that already holds hub data. The row counts written, per table.
 */
export async function copySqliteToPostgres(sqlitePath: string, pgUrl: string, opts: { schema?: string; log: (m: string) => void; batch?: number }): Promise<Record<string, number>> {
  const source = openSource(sqlitePath);
  try {
    const { db, location } = await connectPostgres(pgUrl, { schema: opts.schema, log: opts.log });
    const where = `the PostgreSQL database at ${location}${opts.schema !== undefined ? ` (schema ${opts.schema})` : ''}`;
    try {
      opts.log(`copying ${sqlitePath} into ${where}`);
      source.exec('BEGIN'); // one snapshot of every table
      try {
        return await db.tx(async (t) => {
          await ensureEmpty(t, where);
          const counts: Record<string, number> = {};
          for (const spec of TABLES) counts[spec.table] = await copyTable(source, t, spec, opts.batch ?? 500, opts.log);
          return counts;
        });
      } finally {
        source.exec('COMMIT');
      }
    } finally {
      await db.pool.end();
    }
  } finally {
    source.close();
  }
}
