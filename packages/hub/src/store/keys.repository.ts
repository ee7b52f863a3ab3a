import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { HubDb } from './hub-db.js';

export type Role = 'admin' | 'operator' | 'viewer';
export const ROLES: readonly Role[] = ['admin', 'operator', 'viewer'];

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** API keys: only a sha256 of each key is stored; the key itself is shown once, at creation. */
export class KeysRepository {
  constructor(private readonly db: HubDb) {}

  create(role: Role): { id: string; key: string; role: Role } {
    const id = randomUUID();
    const key = `ffk_${randomBytes(24).toString('base64url')}`;
    this.db.prepare('INSERT INTO api_keys (id, hash, role, created_at) VALUES (?, ?, ?, ?)').run(id, hashSecret(key), role, new Date().toISOString());
    return { id, key, role };
  }

  find(key: string): { id: string; role: Role } | undefined {
    return this.db.prepare('SELECT id, role FROM api_keys WHERE hash = ? AND revoked_at IS NULL').get(hashSecret(key)) as { id: string; role: Role } | undefined;
  }
}
