import { randomUUID } from 'node:crypto';
import { isoUtc, type HubDb } from './hub-db.js';
import type { Gates, RolloutDeviceRow, RolloutDeviceState, RolloutRow, RolloutsRepo, RolloutState, RolloutTarget } from './ports.js';

export type { Gates, RolloutDeviceRow, RolloutDeviceState, RolloutRow, RolloutState, RolloutTarget } from './ports.js';

type Raw = Omit<RolloutRow, 'target' | 'waves' | 'gates'> & { target: string; waves: string; gates: string };
const SELECT = `SELECT id, model_id AS modelId, kind, target, waves, gates, state, wave, reason, wave_done_at AS waveDoneAt,
  created_at AS createdAt, updated_at AS updatedAt FROM rollouts`;
const row = (r: Raw): RolloutRow => ({ ...r, target: JSON.parse(r.target) as RolloutTarget, waves: JSON.parse(r.waves) as number[], gates: JSON.parse(r.gates) as Gates });

export class SqliteRollouts implements RolloutsRepo {
  constructor(private readonly db: HubDb) {}

  async create(r: { modelId: string; kind: string; target: RolloutTarget; waves: number[]; gates: Gates; devices: { deviceId: string; wave: number; previousModelId: string | null }[] }): Promise<RolloutRow> {
    const id = `ro-${randomUUID()}`;
    const now = new Date().toISOString();
    this.db.transaction(() => {
      this.db
        .prepare("INSERT INTO rollouts (id, model_id, kind, target, waves, gates, state, wave, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'running', 0, ?, ?)")
        .run(id, r.modelId, r.kind, JSON.stringify(r.target), JSON.stringify(r.waves), JSON.stringify(r.gates), now, now);
      const add = this.db.prepare("INSERT INTO rollout_devices (rollout_id, device_id, position, wave, state, previous_model_id, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)");
      r.devices.forEach((d, i) => add.run(id, d.deviceId, i, d.wave, d.previousModelId, now));
    })();
    return row(this.db.prepare(`${SELECT} WHERE id = ?`).get(id) as Raw);
  }

  async get(id: string): Promise<RolloutRow | undefined> {
    const r = this.db.prepare(`${SELECT} WHERE id = ?`).get(id) as Raw | undefined;
    return r ? row(r) : undefined;
  }

  async list(): Promise<RolloutRow[]> {
    return (this.db.prepare(`${SELECT} ORDER BY created_at DESC, id`).all() as Raw[]).map(row);
  }

  /** Rollouts still in charge of their devices (running, paused or halted). */
  async open(): Promise<RolloutRow[]> {
    return (this.db.prepare(`${SELECT} WHERE state IN ('running', 'paused', 'halted') ORDER BY created_at`).all() as Raw[]).map(row);
  }

  async update(id: string, patch: { state?: RolloutState; wave?: number; reason?: string | null; waveDoneAt?: string | null }): Promise<void> {
    const cols: [string, unknown][] = [];
    if (patch.state !== undefined) cols.push(['state', patch.state]);
    if (patch.wave !== undefined) cols.push(['wave', patch.wave]);
    if (patch.reason !== undefined) cols.push(['reason', patch.reason]);
    if (patch.waveDoneAt !== undefined) cols.push(['wave_done_at', isoUtc(patch.waveDoneAt)]);
    cols.push(['updated_at', new Date().toISOString()]);
    this.db.prepare(`UPDATE rollouts SET ${cols.map(([c]) => `${c} = ?`).join(', ')} WHERE id = ?`).run(...cols.map(([, v]) => v), id);
  }

  async devices(id: string): Promise<RolloutDeviceRow[]> {
    return this.db
      .prepare('SELECT device_id AS deviceId, position, wave, state, reason, previous_model_id AS previousModelId, updated_at AS updatedAt FROM rollout_devices WHERE rollout_id = ? ORDER BY position')
      .all(id) as RolloutDeviceRow[];
  }

  async setDevice(id: string, deviceId: string, state: RolloutDeviceState, reason: string | null = null): Promise<void> {
    this.db.prepare('UPDATE rollout_devices SET state = ?, reason = ?, updated_at = ? WHERE rollout_id = ? AND device_id = ?').run(state, reason, new Date().toISOString(), id, deviceId);
  }
}
