import { join } from 'node:path';
import type { HubConfig } from '../config.js';
import type { HubStore } from './ports.js';
import { openSqliteStore } from './sqlite.js';

/** The SQLite hub's file in the data dir. */
export function sqliteFile(config: Pick<HubConfig, 'dataDir'>): string {
  return join(config.dataDir, 'hub.db');
}

/** The store the config names: PostgreSQL when databaseUrl is set, else <dataDir>/hub.db. */
export async function openStore(config: Pick<HubConfig, 'dataDir' | 'databaseUrl' | 'databaseSchema'>, cropKey: Buffer, log: (msg: string) => void): Promise<HubStore> {
  if (config.databaseUrl === undefined) return openSqliteStore(sqliteFile(config), { cropKey });
  // Loaded only when used: a hub on SQLite never loads the PostgreSQL client.
  const { openPostgresStore } = await import('./postgres.js');
  return openPostgresStore(config.databaseUrl, { cropKey, log, ...(config.databaseSchema !== undefined ? { schema: config.databaseSchema } : {}) });
}
