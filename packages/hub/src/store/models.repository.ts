import type { ModelManifestInput, SelfTestSpec } from '@facefleet/protocol';
import type { HubDb } from './hub-db.js';
import type { ModelRow, ModelsRepo } from './ports.js';

export type { ModelRow } from './ports.js';

type Raw = Omit<ModelRow, 'manifest' | 'selfTest'> & { manifest: string; selfTest: string | null };
const SELECT = 'SELECT id, kind, sha256, bytes, manifest, self_test AS selfTest, key_id AS keyId, signature, source, path, created_at AS createdAt FROM models';
const row = (r: Raw): ModelRow => ({ ...r, manifest: JSON.parse(r.manifest) as ModelManifestInput, selfTest: r.selfTest ? (JSON.parse(r.selfTest) as SelfTestSpec) : null });

/** The model registry, and which model of each kind every device should run. */
export class SqliteModels implements ModelsRepo {
  constructor(private readonly db: HubDb) {}

  async insert(m: Omit<ModelRow, 'createdAt'>): Promise<boolean> {
    return (
      this.db
        .prepare('INSERT OR IGNORE INTO models (id, kind, sha256, bytes, manifest, self_test, key_id, signature, source, path, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(m.id, m.kind, m.sha256, m.bytes, JSON.stringify(m.manifest), m.selfTest ? JSON.stringify(m.selfTest) : null, m.keyId, m.signature, m.source, m.path, new Date().toISOString()).changes > 0
    );
  }

  async get(id: string): Promise<ModelRow | undefined> {
    const r = this.db.prepare(`${SELECT} WHERE id = ?`).get(id) as Raw | undefined;
    return r ? row(r) : undefined;
  }

  async list(): Promise<ModelRow[]> {
    return (this.db.prepare(`${SELECT} ORDER BY kind, id`).all() as Raw[]).map(row);
  }

  async setSigned(id: string, selfTest: SelfTestSpec, keyId: string, signature: string): Promise<void> {
    this.db.prepare('UPDATE models SET self_test = ?, key_id = ?, signature = ? WHERE id = ?').run(JSON.stringify(selfTest), keyId, signature, id);
  }

  /** The model of each kind a device is assigned (absent kinds: the device runs its own default). */
  async assigned(deviceId: string): Promise<Record<string, { modelId: string; rolloutId: string | null }>> {
    const rows = this.db.prepare('SELECT kind, model_id AS modelId, rollout_id AS rolloutId FROM device_models WHERE device_id = ?').all(deviceId) as { kind: string; modelId: string; rolloutId: string | null }[];
    return Object.fromEntries(rows.map((r) => [r.kind, { modelId: r.modelId, rolloutId: r.rolloutId }]));
  }

  async assign(deviceId: string, kind: string, modelId: string | null, rolloutId: string | null): Promise<void> {
    if (modelId === null) this.db.prepare('DELETE FROM device_models WHERE device_id = ? AND kind = ?').run(deviceId, kind);
    else
      this.db
        .prepare('INSERT INTO device_models (device_id, kind, model_id, rollout_id) VALUES (?, ?, ?, ?) ON CONFLICT(device_id, kind) DO UPDATE SET model_id = excluded.model_id, rollout_id = excluded.rollout_id')
        .run(deviceId, kind, modelId, rolloutId);
  }
}
