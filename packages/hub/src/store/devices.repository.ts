import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { DEFAULT_GALLERY } from './galleries.repository.js';
import type { HubDb } from './hub-db.js';
import { hashSecret } from './keys.repository.js';

export interface DeviceRow {
  id: string;
  name: string;
  createdAt: string;
  revokedAt: string | null;
  online: boolean;
  lastSeen: string | null;
  agentVersion: string | null;
  models: { detector: string; embedder: string } | null;
  outboxDepth: number | null;
}

const SELECT = `SELECT id, name, created_at AS createdAt, revoked_at AS revokedAt, online, last_seen AS lastSeen,
  agent_version AS agentVersion, models, outbox_depth AS outboxDepth FROM devices`;

type Raw = Omit<DeviceRow, 'online' | 'models'> & { online: number; models: string | null };
const row = (r: Raw): DeviceRow => ({ ...r, online: r.online === 1, models: r.models ? (JSON.parse(r.models) as DeviceRow['models']) : null });

export class DevicesRepository {
  constructor(private readonly db: HubDb) {}

  /** A new device and its secret (shown once; only its hash is kept). */
  create(name: string): { device: DeviceRow; secret: string } {
    const id = `dev-${randomUUID()}`;
    const secret = randomBytes(24).toString('base64url');
    this.db.prepare('INSERT INTO devices (id, name, secret_hash, created_at) VALUES (?, ?, ?, ?)').run(id, name, hashSecret(secret), new Date().toISOString());
    return { device: this.get(id)!, secret };
  }

  get(id: string): DeviceRow | undefined {
    const r = this.db.prepare(`${SELECT} WHERE id = ?`).get(id) as Raw | undefined;
    return r ? row(r) : undefined;
  }

  list(): DeviceRow[] {
    return (this.db.prepare(`${SELECT} ORDER BY created_at, id`).all() as Raw[]).map(row);
  }

  /** True when the device exists, is not revoked, and the secret matches (constant time). */
  verify(id: string, secret: string): boolean {
    const r = this.db.prepare('SELECT secret_hash AS h FROM devices WHERE id = ? AND revoked_at IS NULL').get(id) as { h: string } | undefined;
    if (!r) return false;
    const a = Buffer.from(r.h, 'hex');
    const b = Buffer.from(hashSecret(secret), 'hex');
    return a.length === b.length && timingSafeEqual(a, b);
  }

  rename(id: string, name: string): void {
    this.db.prepare('UPDATE devices SET name = ? WHERE id = ?').run(name, id);
  }

  revoke(id: string): boolean {
    return this.db.prepare('UPDATE devices SET revoked_at = ?, online = 0 WHERE id = ? AND revoked_at IS NULL').run(new Date().toISOString(), id).changes > 0;
  }

  setOnline(id: string, online: boolean, agentVersion?: string): void {
    this.db.prepare('UPDATE devices SET online = ?, last_seen = ?, agent_version = COALESCE(?, agent_version) WHERE id = ?').run(online ? 1 : 0, new Date().toISOString(), agentVersion ?? null, id);
  }

  setStatus(id: string, s: { models: { detector: string; embedder: string }; outboxDepth: number; agentVersion: string }): void {
    this.db
      .prepare('UPDATE devices SET last_seen = ?, models = ?, outbox_depth = ?, agent_version = ? WHERE id = ?')
      .run(new Date().toISOString(), JSON.stringify(s.models), s.outboxDepth, s.agentVersion, id);
  }

  /** Assigned galleries; a device with no explicit assignment gets the default gallery. */
  galleries(id: string): string[] {
    const rows = this.db.prepare('SELECT gallery_id AS g FROM device_galleries WHERE device_id = ? ORDER BY gallery_id').all(id) as { g: string }[];
    return rows.length > 0 ? rows.map((r) => r.g) : [DEFAULT_GALLERY];
  }

  setGalleries(id: string, galleryIds: readonly string[]): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM device_galleries WHERE device_id = ?').run(id);
      for (const g of galleryIds) this.db.prepare('INSERT INTO device_galleries (device_id, gallery_id) VALUES (?, ?)').run(id, g);
    })();
  }

  devicesWithGallery(galleryId: string): string[] {
    return this.list()
      .filter((d) => d.revokedAt === null && this.galleries(d.id).includes(galleryId))
      .map((d) => d.id);
  }

  setSeq(id: string, galleryId: string, seq: number): void {
    this.db.prepare('INSERT INTO device_gallery_seq (device_id, gallery_id, seq) VALUES (?, ?, ?) ON CONFLICT(device_id, gallery_id) DO UPDATE SET seq = excluded.seq').run(id, galleryId, seq);
  }

  seqs(id: string): Record<string, number> {
    const rows = this.db.prepare('SELECT gallery_id AS g, seq FROM device_gallery_seq WHERE device_id = ?').all(id) as { g: string; seq: number }[];
    return Object.fromEntries(rows.map((r) => [r.g, r.seq]));
  }
}
