import type { Database } from 'better-sqlite3';

/** Forward-only migrations; PRAGMA user_version records how many have run. */
const MIGRATIONS: string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE subjects (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     created_at TEXT NOT NULL
   );
   CREATE TABLE templates (
     id TEXT PRIMARY KEY,
     subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
     model_id TEXT NOT NULL,
     dim INTEGER NOT NULL,
     vector BLOB NOT NULL,
     source_sha256 TEXT,
     quality REAL,
     created_at TEXT NOT NULL
   );
   CREATE INDEX templates_subject ON templates(subject_id);
   CREATE INDEX templates_model ON templates(model_id);
   CREATE UNIQUE INDEX templates_source ON templates(subject_id, model_id, source_sha256) WHERE source_sha256 IS NOT NULL;`,
  // Galleries synced from a hub: membership per gallery; hub subject names need not be unique.
  `CREATE TABLE subjects2 (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);
   INSERT INTO subjects2 SELECT id, name, created_at FROM subjects;
   DROP TABLE subjects;
   ALTER TABLE subjects2 RENAME TO subjects;
   CREATE INDEX subjects_name ON subjects(name);
   CREATE TABLE gallery_members (gallery_id TEXT NOT NULL, subject_id TEXT NOT NULL, PRIMARY KEY (gallery_id, subject_id));`,
  // A snapshot that arrives in parts is staged here and applied in one transaction when complete.
  `CREATE TABLE staged_subjects (gallery_id TEXT NOT NULL, subject_id TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (gallery_id, subject_id));
   CREATE TABLE staged_templates (
     gallery_id TEXT NOT NULL, id TEXT NOT NULL, subject_id TEXT NOT NULL, model_id TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,
     PRIMARY KEY (gallery_id, id)
   );`,
];

/**
 * Forward-only migrations of any of the project's SQLite files: PRAGMA user_version counts those
 * applied; each runs in its own transaction. Foreign keys are off meanwhile (a table rebuild must
 * not cascade) and on afterwards. A file from a newer version is refused, not downgraded.
 */
export function runMigrations(db: Database, migrations: readonly string[], what: string): void {
  db.pragma('foreign_keys = OFF');
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) {
    throw new Error(`${what} schema version ${current} is newer than this facefleet (${migrations.length})`);
  }
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  db.pragma('foreign_keys = ON');
}

export function migrate(db: Database): void {
  runMigrations(db, MIGRATIONS, 'gallery');
}
