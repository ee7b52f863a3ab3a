import type Database from 'better-sqlite3';
import type { EventMessage } from '@facefleet/protocol';

export interface OutboxLimits {
  /** Most undelivered events kept; older ones are dropped (and counted) beyond it. */
  maxEvents: number;
  /** Undelivered events older than this are dropped (and counted). */
  maxAgeMs: number;
}

export interface StoredEvent {
  event: EventMessage;
  delivered: boolean;
  createdAt: number;
}

/**
 * Durable event outbox. An event is written (synchronously, in its own transaction) before the
 * pipeline moves on; it is sent with its id, and marked delivered only when the hub acknowledges
 * that id. Delivered events are kept for local inspection until pruned with the same limits.
 */
export class Outbox {
  constructor(
    private readonly db: Database.Database,
    private readonly limits: OutboxLimits,
    private readonly now: () => number = Date.now,
  ) {}

  add(event: EventMessage): void {
    this.db.prepare('INSERT OR IGNORE INTO outbox (id, payload, created_at) VALUES (?, ?, ?)').run(event.id, JSON.stringify(event), this.now());
    this.enforceLimits();
  }

  /** Undelivered events, oldest first, not sent within `resendAfterMs` (so in-flight ones wait). */
  due(limit: number, resendAfterMs: number): EventMessage[] {
    const cutoff = this.now() - resendAfterMs;
    const rows = this.db
      .prepare(
        `SELECT payload FROM outbox WHERE delivered_at IS NULL AND (last_sent_at IS NULL OR last_sent_at <= ?)
         ORDER BY created_at, id LIMIT ?`,
      )
      .all(cutoff, limit) as { payload: string }[];
    return rows.map((r) => JSON.parse(r.payload) as EventMessage);
  }

  markSent(ids: readonly string[]): void {
    const stmt = this.db.prepare('UPDATE outbox SET attempts = attempts + 1, last_sent_at = ? WHERE id = ?');
    const now = this.now();
    this.db.transaction(() => ids.forEach((id) => stmt.run(now, id)))();
  }

  /** Clear every pending send mark (after a reconnect, everything unacknowledged is due again). */
  resetInFlight(): void {
    this.db.prepare('UPDATE outbox SET last_sent_at = NULL WHERE delivered_at IS NULL').run();
  }

  /** Returns how many of `ids` were pending (acks of unknown or already-delivered ids count 0). */
  markDelivered(ids: readonly string[]): number {
    const stmt = this.db.prepare('UPDATE outbox SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL');
    const now = this.now();
    let n = 0;
    this.db.transaction(() => ids.forEach((id) => (n += stmt.run(now, id).changes)))();
    if (n > 0) this.bump('delivered', n);
    return n;
  }

  depth(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL').get() as { n: number }).n;
  }

  /** Newest first. */
  list(limit = 100): StoredEvent[] {
    const rows = this.db.prepare('SELECT payload, delivered_at, created_at FROM outbox ORDER BY created_at DESC, rowid DESC LIMIT ?').all(limit) as {
      payload: string;
      delivered_at: number | null;
      created_at: number;
    }[];
    return rows.map((r) => ({ event: JSON.parse(r.payload) as EventMessage, delivered: r.delivered_at !== null, createdAt: r.created_at }));
  }

  counters(): Record<string, number> {
    const rows = this.db.prepare("SELECT name, value FROM counters WHERE name LIKE 'outbox.%'").all() as { name: string; value: number }[];
    return Object.fromEntries(rows.map((r) => [r.name.slice('outbox.'.length), r.value]));
  }

  /** Drop what is over the limits: undelivered (counted as dropped) and delivered (history). */
  enforceLimits(): void {
    const ageCutoff = this.now() - this.limits.maxAgeMs;
    const tooOld = this.db.prepare('DELETE FROM outbox WHERE delivered_at IS NULL AND created_at < ?').run(ageCutoff).changes;
    if (tooOld > 0) this.bump('droppedAge', tooOld);
    const over = this.depth() - this.limits.maxEvents;
    if (over > 0) {
      const dropped = this.db
        .prepare('DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE delivered_at IS NULL ORDER BY created_at, id LIMIT ?)')
        .run(over).changes;
      this.bump('droppedFull', dropped);
    }
    this.db.prepare('DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?').run(ageCutoff);
    const history = this.db.prepare('SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NOT NULL').get() as { n: number };
    if (history.n > this.limits.maxEvents) {
      this.db
        .prepare('DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE delivered_at IS NOT NULL ORDER BY delivered_at LIMIT ?)')
        .run(history.n - this.limits.maxEvents);
    }
  }

  private bump(name: string, by: number): void {
    this.db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value').run(`outbox.${name}`, by);
  }
}
