import type { EventMessage } from '@facefleet/protocol';
import { isoUtc, type HubDb } from './hub-db.js';
import type { EventFilter, EventRow, EventsRepo } from './ports.js';

export type { EventFilter, EventRow } from './ports.js';

/** Events, stored once per id (agents resend until acknowledged). */
export class SqliteEvents implements EventsRepo {
  constructor(private readonly db: HubDb) {}

  /** One transaction (one WAL commit) per batch. */
  async insertMany(events: readonly EventMessage[]): Promise<boolean[]> {
    const stmt = this.db.prepare(
      'INSERT OR IGNORE INTO events (id, device_id, type, subject_id, subject, similarity, at, received_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const receivedAt = new Date().toISOString();
    return this.db.transaction(() =>
      events.map((e) => stmt.run(e.id, e.deviceId, e.type, e.subjectId, e.subject, e.similarity, new Date(e.at).toISOString(), receivedAt, JSON.stringify(e)).changes > 0),
    )();
  }

  async list(f: EventFilter, limit: number, after?: { at: string; id: string }): Promise<EventRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (clause: string, ...values: unknown[]): void => {
      where.push(clause);
      args.push(...values);
    };
    if (f.device) add('device_id = ?', f.device);
    if (f.subject) add('(subject_id = ? OR subject = ?)', f.subject, f.subject);
    if (f.type) add('type = ?', f.type);
    if (f.from) add('at >= ?', isoUtc(f.from));
    if (f.to) add('at < ?', isoUtc(f.to));
    if (after) add('(at < ? OR (at = ? AND id < ?))', isoUtc(after.at), isoUtc(after.at), after.id);
    const sql = `SELECT id, device_id AS deviceId, type, subject, subject_id AS subjectId, similarity, at, received_at AS receivedAt FROM events
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT ?`;
    return this.db.prepare(sql).all(...args, limit) as EventRow[];
  }

  async count(): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
  }

  async purgeOlderThan(cutoff: string): Promise<number> {
    return this.db.prepare('DELETE FROM events WHERE at < ?').run(isoUtc(cutoff)).changes;
  }
}
