import type { ModelManifestInput, SelfTestSpec } from '@facefleet/protocol';
import type { HubDb } from './hub-db.js';

export interface ModelRow {
  id: string;
  kind: 'detector' | 'embedder' | 'liveness';
  sha256: string;
  bytes: number;
  manifest: ModelManifestInput;
  selfTest: SelfTestSpec | null;
  keyId: string | null;
  signature: string | null;
  /** `manifest`: from the project's models/manifest.json; `upload`: registered through the API. */
  source: 'manifest' | 'upload';
  path: string;
  createdAt: string;
}

type Raw = Omit<ModelRow, 'manifest' | 'selfTest'> & { manifest: string; selfTest: string | null };
const SELECT = 'SELECT id, kind, sha256, bytes, manifest, self_test AS selfTest, key_id AS keyId, signature, source, path, created_at AS createdAt FROM models';
const row = (r: Raw): ModelRow => ({ ...r, manifest: JSON.parse(r.manifest) as ModelManifestInput, selfTest: r.selfTest ? (JSON.parse(r.selfTest) as SelfTestSpec) : null });

/** The model registry, and which model of each kind every device should run. */
export class ModelsRepository {
  constructor(private readonly db: HubDb) {}

  insert(m: Omit<ModelRow, 'createdAt'>): ModelRow {
    this.db
      .prepare('INSERT INTO models (id, kind, sha256, bytes, manifest, self_test, key_id, signature, source, path, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(m.id, m.kind, m.sha256, m.bytes, JSON.stringify(m.manifest), m.selfTest ? JSON.stringify(m.selfTest) : null, m.keyId, m.signature, m.source, m.path, new Date().toISOString());
    return this.get(m.id)!;
  }

  get(id: string): ModelRow | undefined {
    const r = this.db.prepare(`${SELECT} WHERE id = ?`).get(id) as Raw | undefined;
    return r ? row(r) : undefined;
  }

  list(): ModelRow[] {
    return (this.db.prepare(`${SELECT} ORDER BY kind, id`).all() as Raw[]).map(row);
  }

  setSigned(id: string, selfTest: SelfTestSpec, keyId: string, signature: string): void {
    this.db.prepare('UPDATE models SET self_test = ?, key_id = ?, signature = ? WHERE id = ?').run(JSON.stringify(selfTest), keyId, signature, id);
  }

  /** The model of each kind a device is assigned (absent kinds: the device runs its own default). */
  assigned(deviceId: string): Record<string, { modelId: string; rolloutId: string | null }> {
    const rows = this.db.prepare('SELECT kind, model_id AS modelId, rollout_id AS rolloutId FROM device_models WHERE device_id = ?').all(deviceId) as { kind: string; modelId: string; rolloutId: string | null }[];
    return Object.fromEntries(rows.map((r) => [r.kind, { modelId: r.modelId, rolloutId: r.rolloutId }]));
  }

  assign(deviceId: string, kind: string, modelId: string | null, rolloutId: string | null): void {
    if (modelId === null) this.db.prepare('DELETE FROM device_models WHERE device_id = ? AND kind = ?').run(deviceId, kind);
    else
      this.db
        .prepare('INSERT INTO device_models (device_id, kind, model_id, rollout_id) VALUES (?, ?, ?, ?) ON CONFLICT(device_id, kind) DO UPDATE SET model_id = excluded.model_id, rollout_id = excluded.rollout_id')
        .run(deviceId, kind, modelId, rolloutId);
  }
}
