import type { EventMessage } from '@facefleet/protocol';
import type { HubDb } from './hub-db.js';

export interface EventRow {
  id: string;
  deviceId: string;
  type: 'recognition' | 'unknown';
  subject: string | null;
  subjectId: string | null;
  similarity: number;
  at: string;
  receivedAt: string;
}

export interface EventFilter {
  device?: string;
  subject?: string;
  type?: string;
  from?: string;
  to?: string;
}

/** Events, stored once per id (agents resend until acknowledged). */
export class EventsRepository {
  constructor(private readonly db: HubDb) {}

  /** True when stored now, false when this id was already stored. */
  insert(e: EventMessage): boolean {
    return this.insertMany([e])[0]!;
  }

  /** Store a batch in one transaction (one WAL commit); per event: stored now, or already there. */
  insertMany(events: readonly EventMessage[]): boolean[] {
    const stmt = this.db.prepare(
      'INSERT OR IGNORE INTO events (id, device_id, type, subject_id, subject, similarity, at, received_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const receivedAt = new Date().toISOString();
    return this.db.transaction(() =>
      events.map((e) => stmt.run(e.id, e.deviceId, e.type, e.subjectId, e.subject, e.similarity, new Date(e.at).toISOString(), receivedAt, JSON.stringify(e)).changes > 0),
    )();
  }

  /** Newest first; `after` is the (at, id) of the last row of the previous page. */
  list(f: EventFilter, limit: number, after?: { at: string; id: string }): EventRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (clause: string, ...values: unknown[]): void => {
      where.push(clause);
      args.push(...values);
    };
    if (f.device) add('device_id = ?', f.device);
    if (f.subject) add('(subject_id = ? OR subject = ?)', f.subject, f.subject);
    if (f.type) add('type = ?', f.type);
    if (f.from) add('at >= ?', f.from);
    if (f.to) add('at < ?', f.to);
    if (after) add('(at < ? OR (at = ? AND id < ?))', after.at, after.at, after.id);
    const sql = `SELECT id, device_id AS deviceId, type, subject, subject_id AS subjectId, similarity, at, received_at AS receivedAt FROM events
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT ?`;
    return this.db.prepare(sql).all(...args, limit) as EventRow[];
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
  }

  purgeOlderThan(cutoff: string): number {
    return this.db.prepare('DELETE FROM events WHERE at < ?').run(cutoff).changes;
  }
}
