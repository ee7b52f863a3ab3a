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
];

export type HubDb = Database.Database;

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
