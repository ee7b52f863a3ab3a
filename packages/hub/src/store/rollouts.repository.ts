import { randomUUID } from 'node:crypto';
import type { HubDb } from './hub-db.js';

export type RolloutState = 'running' | 'paused' | 'halted' | 'completed' | 'aborted' | 'rolledBack';
/** pending: its wave is not reached; assigned: told, no report yet; then the device's own steps. */
export type RolloutDeviceState = 'pending' | 'assigned' | 'downloading' | 'verifying' | 'testing' | 'active' | 'failed' | 'rolledBack' | 'cancelled';

export interface Gates {
  /** Failed devices / devices of the wave above this halts the rollout (0: any failure halts). */
  maxFailureRate: number;
  /** Seconds a finished wave must stay healthy before the next starts. */
  soakSeconds: number;
  /** Share of a wave's devices (percent) that must run the model before the next wave starts. */
  minHealthyPercent: number;
}

export type RolloutTarget = 'all' | { devices: string[] } | { galleries: string[] };

export interface RolloutRow {
  id: string;
  modelId: string;
  kind: string;
  target: RolloutTarget;
  waves: number[];
  gates: Gates;
  state: RolloutState;
  /** Index of the current wave. */
  wave: number;
  reason: string | null;
  waveDoneAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface RolloutDeviceRow {
  deviceId: string;
  position: number;
  wave: number;
  state: RolloutDeviceState;
  reason: string | null;
  previousModelId: string | null;
  updatedAt: string;
}

type Raw = Omit<RolloutRow, 'target' | 'waves' | 'gates'> & { target: string; waves: string; gates: string };
const SELECT = `SELECT id, model_id AS modelId, kind, target, waves, gates, state, wave, reason, wave_done_at AS waveDoneAt,
  created_at AS createdAt, updated_at AS updatedAt FROM rollouts`;
const row = (r: Raw): RolloutRow => ({ ...r, target: JSON.parse(r.target) as RolloutTarget, waves: JSON.parse(r.waves) as number[], gates: JSON.parse(r.gates) as Gates });

export class RolloutsRepository {
  constructor(private readonly db: HubDb) {}

  create(r: { modelId: string; kind: string; target: RolloutTarget; waves: number[]; gates: Gates; devices: { deviceId: string; wave: number; previousModelId: string | null }[] }): RolloutRow {
    const id = `ro-${randomUUID()}`;
    const now = new Date().toISOString();
    this.db.transaction(() => {
      this.db
        .prepare("INSERT INTO rollouts (id, model_id, kind, target, waves, gates, state, wave, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'running', 0, ?, ?)")
        .run(id, r.modelId, r.kind, JSON.stringify(r.target), JSON.stringify(r.waves), JSON.stringify(r.gates), now, now);
      const add = this.db.prepare("INSERT INTO rollout_devices (rollout_id, device_id, position, wave, state, previous_model_id, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)");
      r.devices.forEach((d, i) => add.run(id, d.deviceId, i, d.wave, d.previousModelId, now));
    })();
    return this.get(id)!;
  }

  get(id: string): RolloutRow | undefined {
    const r = this.db.prepare(`${SELECT} WHERE id = ?`).get(id) as Raw | undefined;
    return r ? row(r) : undefined;
  }

  list(): RolloutRow[] {
    return (this.db.prepare(`${SELECT} ORDER BY created_at DESC, id`).all() as Raw[]).map(row);
  }

  /** Rollouts still in charge of their devices (running, paused or halted). */
  open(): RolloutRow[] {
    return (this.db.prepare(`${SELECT} WHERE state IN ('running', 'paused', 'halted') ORDER BY created_at`).all() as Raw[]).map(row);
  }

  update(id: string, patch: { state?: RolloutState; wave?: number; reason?: string | null; waveDoneAt?: string | null }): void {
    const cols: [string, unknown][] = [];
    if (patch.state !== undefined) cols.push(['state', patch.state]);
    if (patch.wave !== undefined) cols.push(['wave', patch.wave]);
    if (patch.reason !== undefined) cols.push(['reason', patch.reason]);
    if (patch.waveDoneAt !== undefined) cols.push(['wave_done_at', patch.waveDoneAt]);
    cols.push(['updated_at', new Date().toISOString()]);
    this.db.prepare(`UPDATE rollouts SET ${cols.map(([c]) => `${c} = ?`).join(', ')} WHERE id = ?`).run(...cols.map(([, v]) => v), id);
  }

  devices(id: string): RolloutDeviceRow[] {
    return this.db
      .prepare('SELECT device_id AS deviceId, position, wave, state, reason, previous_model_id AS previousModelId, updated_at AS updatedAt FROM rollout_devices WHERE rollout_id = ? ORDER BY position')
      .all(id) as RolloutDeviceRow[];
  }

  setDevice(id: string, deviceId: string, state: RolloutDeviceState, reason: string | null = null): void {
    this.db.prepare('UPDATE rollout_devices SET state = ?, reason = ?, updated_at = ? WHERE rollout_id = ? AND device_id = ?').run(state, reason, new Date().toISOString(), id, deviceId);
  }
}
