import type { HubDb } from './hub-db.js';
import type { LeasesRepo } from './ports.js';

/** Leases in SQLite: one hub process per file, but the same semantics as PostgreSQL's. */
export class SqliteLeases implements LeasesRepo {
  constructor(private readonly db: HubDb) {}

  async acquire(name: string, holder: string, ttlMs: number): Promise<boolean> {
    const now = new Date();
    // One statement: RETURNING yields a row only when this holder took or renewed the lease.
    const row = this.db
      .prepare(
        `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE leases.holder = excluded.holder OR leases.expires_at < ?
         RETURNING holder`,
      )
      .get(name, holder, new Date(now.getTime() + ttlMs).toISOString(), now.toISOString()) as { holder: string } | undefined;
    return row?.holder === holder;
  }

  async release(name: string, holder: string): Promise<void> {
    this.db.prepare('DELETE FROM leases WHERE name = ? AND holder = ?').run(name, holder);
  }

  async holder(name: string): Promise<{ holder: string; expiresAt: string } | undefined> {
    return this.db.prepare('SELECT holder, expires_at AS expiresAt FROM leases WHERE name = ?').get(name) as { holder: string; expiresAt: string } | undefined;
  }
}
