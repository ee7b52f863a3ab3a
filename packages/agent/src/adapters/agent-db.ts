import Database from 'better-sqlite3';
import { runMigrations } from '@facefleet/gallery';
import { ConfigError } from '@facefleet/protocol';

const MIGRATIONS: string[] = [
  `CREATE TABLE outbox (
     id TEXT PRIMARY KEY,
     payload TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_sent_at INTEGER,
     delivered_at INTEGER
   );
   CREATE INDEX outbox_pending ON outbox(created_at) WHERE delivered_at IS NULL;
   CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
   CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
];

/** The agent's own state file (outbox, counters, key/values): WAL, synchronous=FULL for the outbox. */
export function openAgentDb(path: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    // FULL: an event acknowledged to the pipeline is on disk even if the box loses power.
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    runMigrations(db, MIGRATIONS, 'agent database');
  } catch (err) {
    throw new ConfigError(`cannot open agent database ${path}: ${(err as Error).message}`, { cause: err });
  }
  return db;
}
