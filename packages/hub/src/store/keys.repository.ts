import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { HubDb } from './hub-db.js';
import type { KeysRepo, Role } from './ports.js';

export { ROLES, type Role } from './ports.js';

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** A new API key: `ffk_` and 24 random bytes. */
export const newApiKey = (): string => `ffk_${randomBytes(24).toString('base64url')}`;

/** API keys: only a sha256 of each key is stored; the key itself is shown once, at creation. */
export class SqliteKeys implements KeysRepo {
  constructor(private readonly db: HubDb) {}

  async create(role: Role): Promise<{ id: string; key: string; role: Role }> {
    const id = randomUUID();
    const key = newApiKey();
    this.db.prepare('INSERT INTO api_keys (id, hash, role, created_at) VALUES (?, ?, ?, ?)').run(id, hashSecret(key), role, new Date().toISOString());
    return { id, key, role };
  }

  async find(key: string): Promise<{ id: string; role: Role } | undefined> {
    return this.db.prepare('SELECT id, role FROM api_keys WHERE hash = ? AND revoked_at IS NULL').get(hashSecret(key)) as { id: string; role: Role } | undefined;
  }
}
