import type Database from 'better-sqlite3';
import { modelRef, type ModelRef } from '@facefleet/protocol';

export type UpdatableKind = 'detector' | 'embedder';
export const UPDATABLE_KINDS: readonly UpdatableKind[] = ['detector', 'embedder'];

/** Per kind: the hub-assigned model (its signed reference); absent = the agent's own configured model. */
export type AssignedRefs = Partial<Record<UpdatableKind, ModelRef>>;

/**
 * What the model updater keeps in agent.db's kv table: `models.active` (the references running
 * now), `models.previous` (per kind, what ran before that kind's last switch, `null` for the
 * agent's own model) and `models.trustedKey` (a signing key pinned on first use).
 */
export class ModelState {
  constructor(private readonly db: Database.Database) {}

  private get(key: string): unknown {
    const row = this.db.prepare('SELECT value FROM kv WHERE key = ?').get(key) as { value: string } | undefined;
    if (!row) return undefined;
    try {
      return JSON.parse(row.value) as unknown;
    } catch {
      return undefined;
    }
  }

  private set(key: string, value: unknown): void {
    this.db.prepare('INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, JSON.stringify(value));
  }

  active(): AssignedRefs {
    return refs(this.get('models.active'));
  }

  previous(): Partial<Record<UpdatableKind, ModelRef | null>> {
    const raw = this.get('models.previous');
    const out: Partial<Record<UpdatableKind, ModelRef | null>> = {};
    if (raw === null || typeof raw !== 'object') return out;
    for (const kind of UPDATABLE_KINDS) {
      const v = (raw as Record<string, unknown>)[kind];
      if (v === null) out[kind] = null;
      else {
        const r = modelRef.safeParse(v);
        if (r.success) out[kind] = r.data;
      }
    }
    return out;
  }

  /** Record a switch of one kind, in one transaction: `to` runs now (null: the agent's own), `from` ran before. */
  recordSwitch(kind: UpdatableKind, from: ModelRef | null, to: ModelRef | null): void {
    this.db.transaction(() => {
      const active = this.active();
      if (to) active[kind] = to;
      else delete active[kind];
      this.set('models.active', active);
      this.set('models.previous', { ...this.previous(), [kind]: from });
    })();
  }

  trustedKey(): string | undefined {
    const v = this.get('models.trustedKey');
    return typeof v === 'string' ? v : undefined;
  }

  pinKey(pem: string): void {
    this.set('models.trustedKey', pem);
  }
}

function refs(raw: unknown): AssignedRefs {
  const out: AssignedRefs = {};
  if (raw === null || typeof raw !== 'object') return out;
  for (const kind of UPDATABLE_KINDS) {
    const r = modelRef.safeParse((raw as Record<string, unknown>)[kind]);
    if (r.success && r.data.kind === kind) out[kind] = r.data;
  }
  return out;
}
