import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { mosquittoPasswordHash } from '../mqtt/mosquitto-hash.js';
import type { HubDb } from './hub-db.js';
import { hashSecret } from './keys.repository.js';
import { DEFAULT_GALLERY, type DeviceRow, type DevicesRepo } from './ports.js';

export type { DeviceRow } from './ports.js';

const SELECT = `SELECT id, name, created_at AS createdAt, revoked_at AS revokedAt, online, last_seen AS lastSeen,
  agent_version AS agentVersion, models, outbox_depth AS outboxDepth FROM devices`;

type Raw = Omit<DeviceRow, 'online' | 'models'> & { online: number; models: string | null };
const row = (r: Raw): DeviceRow => ({ ...r, online: r.online === 1, models: r.models ? (JSON.parse(r.models) as DeviceRow['models']) : null });

/** A new device id and secret: `dev-<uuid>` and 24 random bytes. */
export const newDeviceCredentials = (): { id: string; secret: string } => ({ id: `dev-${randomUUID()}`, secret: randomBytes(24).toString('base64url') });

/** Constant-time comparison of a secret with its stored sha256. */
export function secretMatches(storedHash: string, secret: string): boolean {
  const a = Buffer.from(storedHash, 'hex');
  const b = Buffer.from(hashSecret(secret), 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

export class SqliteDevices implements DevicesRepo {
  constructor(private readonly db: HubDb) {}

  async create(name: string): Promise<{ device: DeviceRow; secret: string }> {
    const { id, secret } = newDeviceCredentials();
    this.db
      .prepare('INSERT INTO devices (id, name, secret_hash, broker_hash, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(id, name, hashSecret(secret), mosquittoPasswordHash(secret), new Date().toISOString());
    return { device: row(this.db.prepare(`${SELECT} WHERE id = ?`).get(id) as Raw), secret };
  }

  async get(id: string): Promise<DeviceRow | undefined> {
    const r = this.db.prepare(`${SELECT} WHERE id = ?`).get(id) as Raw | undefined;
    return r ? row(r) : undefined;
  }

  async list(): Promise<DeviceRow[]> {
    return (this.db.prepare(`${SELECT} ORDER BY created_at, id`).all() as Raw[]).map(row);
  }

  async verify(id: string, secret: string): Promise<boolean> {
    const r = this.db.prepare('SELECT secret_hash AS h FROM devices WHERE id = ? AND revoked_at IS NULL').get(id) as { h: string } | undefined;
    return r !== undefined && secretMatches(r.h, secret);
  }

  async rename(id: string, name: string): Promise<void> {
    this.db.prepare('UPDATE devices SET name = ? WHERE id = ?').run(name, id);
  }

  async revoke(id: string): Promise<boolean> {
    return this.db.prepare('UPDATE devices SET revoked_at = ?, online = 0 WHERE id = ? AND revoked_at IS NULL').run(new Date().toISOString(), id).changes > 0;
  }

  async setOnline(id: string, online: boolean, agentVersion?: string): Promise<void> {
    this.db.prepare('UPDATE devices SET online = ?, last_seen = ?, agent_version = COALESCE(?, agent_version) WHERE id = ?').run(online ? 1 : 0, new Date().toISOString(), agentVersion ?? null, id);
  }

  async setStatus(id: string, s: { models: { detector: string; embedder: string }; outboxDepth: number; agentVersion: string; galleries?: Record<string, number> }): Promise<void> {
    this.db.transaction(() => {
      this.db
        .prepare('UPDATE devices SET last_seen = ?, models = ?, outbox_depth = ?, agent_version = ? WHERE id = ?')
        .run(new Date().toISOString(), JSON.stringify(s.models), s.outboxDepth, s.agentVersion, id);
      const seq = this.db.prepare('INSERT INTO device_gallery_seq (device_id, gallery_id, seq) VALUES (?, ?, ?) ON CONFLICT(device_id, gallery_id) DO UPDATE SET seq = excluded.seq');
      for (const [g, n] of Object.entries(s.galleries ?? {})) seq.run(id, g, n);
    })();
  }

  async galleries(id: string): Promise<string[]> {
    return this.assigned(id);
  }

  private assigned(id: string): string[] {
    const rows = this.db.prepare('SELECT gallery_id AS g FROM device_galleries WHERE device_id = ? ORDER BY gallery_id').all(id) as { g: string }[];
    return rows.length > 0 ? rows.map((r) => r.g) : [DEFAULT_GALLERY];
  }

  async setGalleries(id: string, galleryIds: readonly string[]): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM device_galleries WHERE device_id = ?').run(id);
      for (const g of galleryIds) this.db.prepare('INSERT INTO device_galleries (device_id, gallery_id) VALUES (?, ?)').run(id, g);
    })();
  }

  async devicesWithGallery(galleryId: string): Promise<string[]> {
    const live = this.db.prepare('SELECT id FROM devices WHERE revoked_at IS NULL ORDER BY created_at, id').all() as { id: string }[];
    return live.map((d) => d.id).filter((id) => this.assigned(id).includes(galleryId));
  }

  async seqs(id: string): Promise<Record<string, number>> {
    const rows = this.db.prepare('SELECT gallery_id AS g, seq FROM device_gallery_seq WHERE device_id = ?').all(id) as { g: string; seq: number }[];
    return Object.fromEntries(rows.map((r) => [r.g, r.seq]));
  }

  async brokerAccounts(): Promise<{ id: string; brokerHash: string | null; galleries: string[] }[]> {
    const live = this.db.prepare('SELECT id, broker_hash AS brokerHash FROM devices WHERE revoked_at IS NULL ORDER BY id').all() as { id: string; brokerHash: string | null }[];
    return live.map((d) => ({ ...d, galleries: this.assigned(d.id) }));
  }
}
