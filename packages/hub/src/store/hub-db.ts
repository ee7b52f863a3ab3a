import Database from 'better-sqlite3';
import { runMigrations } from '@facefleet/gallery';
import { ConfigError } from '@facefleet/protocol';

/** Forward-only migrations of the hub's SQLite store (PRAGMA user_version counts them). */
const MIGRATIONS: string[] = [
  `CREATE TABLE api_keys (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT);
   CREATE TABLE subjects (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, consent_at TEXT, purpose TEXT, delete_after TEXT,
     created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
   CREATE INDEX subjects_name ON subjects(name);
   CREATE TABLE templates (
     id TEXT PRIMARY KEY, subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
     model_id TEXT NOT NULL, vector BLOB NOT NULL, quality REAL, source_sha256 TEXT, created_at TEXT NOT NULL);
   CREATE INDEX templates_subject ON templates(subject_id);
   CREATE TABLE galleries (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, is_default INTEGER NOT NULL DEFAULT 0, head_seq INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
   CREATE TABLE gallery_members (gallery_id TEXT NOT NULL REFERENCES galleries(id) ON DELETE CASCADE, subject_id TEXT NOT NULL, PRIMARY KEY (gallery_id, subject_id));
   CREATE TABLE gallery_log (gallery_id TEXT NOT NULL, seq INTEGER NOT NULL, op TEXT NOT NULL, subject_id TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (gallery_id, seq));
   CREATE TABLE devices (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT,
     online INTEGER NOT NULL DEFAULT 0, last_seen TEXT, agent_version TEXT, models TEXT, outbox_depth INTEGER);
   CREATE TABLE device_galleries (device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE, gallery_id TEXT NOT NULL REFERENCES galleries(id) ON DELETE CASCADE, PRIMARY KEY (device_id, gallery_id));
   CREATE TABLE device_gallery_seq (device_id TEXT NOT NULL, gallery_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (device_id, gallery_id));
   CREATE TABLE events (
     id TEXT PRIMARY KEY, device_id TEXT NOT NULL, type TEXT NOT NULL, subject_id TEXT, subject TEXT,
     similarity REAL NOT NULL, at TEXT NOT NULL, received_at TEXT NOT NULL, payload TEXT NOT NULL, rowid_seq INTEGER);
   CREATE INDEX events_at ON events(at DESC, id DESC);
   CREATE INDEX events_subject ON events(subject_id);
   CREATE INDEX events_device ON events(device_id);`,
  // Fleet model updates: the registry, what each device should run, rollouts, and face crops for re-embedding.
  `CREATE TABLE models (
     id TEXT PRIMARY KEY, kind TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, manifest TEXT NOT NULL,
     self_test TEXT, key_id TEXT, signature TEXT, source TEXT NOT NULL, path TEXT NOT NULL, created_at TEXT NOT NULL);
   CREATE TABLE device_models (
     device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE, kind TEXT NOT NULL, model_id TEXT NOT NULL REFERENCES models(id),
     rollout_id TEXT, PRIMARY KEY (device_id, kind));
   CREATE TABLE rollouts (
     id TEXT PRIMARY KEY, model_id TEXT NOT NULL REFERENCES models(id), kind TEXT NOT NULL, target TEXT NOT NULL, waves TEXT NOT NULL,
     gates TEXT NOT NULL, state TEXT NOT NULL, wave INTEGER NOT NULL, reason TEXT, wave_done_at TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
   CREATE TABLE rollout_devices (
     rollout_id TEXT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE, device_id TEXT NOT NULL, position INTEGER NOT NULL, wave INTEGER NOT NULL,
     state TEXT NOT NULL, reason TEXT, previous_model_id TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (rollout_id, device_id));
   CREATE TABLE face_crops (
     subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE, source_sha256 TEXT NOT NULL,
     width INTEGER NOT NULL, height INTEGER NOT NULL, iv BLOB NOT NULL, tag BLOB NOT NULL, data BLOB NOT NULL, created_at TEXT NOT NULL,
     PRIMARY KEY (subject_id, source_sha256));`,
  // Scale-out: device secrets in Mosquitto's form for an external broker; leases for once-only work.
  `ALTER TABLE devices ADD COLUMN broker_hash TEXT;
   CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at TEXT NOT NULL);`,
];

export type HubDb = Database.Database;

/**
 * Times are stored as UTC ISO 8601 text (`…Z`), so text order is time order: a time given with an
 * offset (`+02:00`) is normalised before it is stored or compared.
 */
export function isoUtc<T extends string | null | undefined>(t: T): T {
  return (typeof t === 'string' ? new Date(t).toISOString() : t) as T;
}

export function openHubDb(path: string): HubDb {
  let db: HubDb;
  try {
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    runMigrations(db, MIGRATIONS, 'hub database'); // leaves foreign keys on
  } catch (err) {
    throw new ConfigError(`cannot open hub database ${path}: ${(err as Error).message}`, { cause: err });
  }
  return db;
}
