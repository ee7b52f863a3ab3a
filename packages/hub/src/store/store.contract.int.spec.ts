import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@facefleet/protocol';
import { describe, expect, it } from 'vitest';
import { openSqliteStore } from './sqlite.js';
import { describePostgres, storeContract, testSchema } from './store.contract.js';

const cropKey = randomBytes(32);

// Made on first open, so a run that filters these cases out leaves nothing behind.
let dir: string | undefined;
storeContract(
  'sqlite',
  () => openSqliteStore(join((dir ??= mkdtempSync(join(tmpdir(), 'ff-store-contract-'))), 'hub.db'), { cropKey }),
  () => Promise.resolve(dir === undefined ? undefined : rmSync(dir, { recursive: true, force: true })),
);

await describePostgres('postgres store contract', ({ url, postgres, dropSchema }) => {
  const schema = testSchema();
  storeContract(
    'postgres',
    () => postgres.openPostgresStore(url, { cropKey, schema }),
    () => dropSchema(schema),
  );

  describe('postgres store migrations', () => {
    it('migrates a fresh schema once when several replicas start at the same moment', async () => {
      const fresh = testSchema();
      const logs: string[] = [];
      try {
        const stores = await Promise.all(Array.from({ length: 4 }, () => postgres.openPostgresStore(url, { cropKey, schema: fresh, log: (m) => logs.push(m) })));
        expect(logs.filter((m) => /migration 1 applied/.test(m))).toHaveLength(1);
        expect(logs.filter((m) => /created database schema/.test(m))).toHaveLength(1);
        expect((await stores[0]!.galleries.list()).map((g) => g.id)).toEqual(['default']);
        await Promise.all(stores.map((s) => s.close()));
        // Reopening finds every migration applied and applies none again.
        const again = await postgres.openPostgresStore(url, { cropKey, schema: fresh, log: (m) => logs.push(m) });
        await again.close();
        expect(logs.filter((m) => /migration \d+ applied/.test(m))).toHaveLength(postgres.PG_SCHEMA_VERSION);
      } finally {
        await dropSchema(fresh);
      }
    });
  });

  describe('postgres store connection errors', () => {
    it('says in one line which server could not be reached, without the password', async () => {
      const err = await postgres.openPostgresStore('postgres://ff:hunter2@127.0.0.1:1/hub', { cropKey }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as Error).message;
      expect(message).toMatch(/^cannot reach PostgreSQL at postgres:\/\/ff:\*\*\*@127\.0\.0\.1:1\/hub: .*ECONNREFUSED/);
      expect(message).not.toContain('hunter2');
      expect(message).not.toContain('\n');
      expect(postgres.maskDatabaseUrl('postgres://ff:hunter2@db:5432/hub?sslmode=require')).toBe('postgres://ff:***@db:5432/hub?sslmode=require');
    });

    it('rejects a URL that is not a PostgreSQL URL, or a schema name that is not plain', async () => {
      await expect(postgres.openPostgresStore('mysql://x@localhost/db', { cropKey })).rejects.toThrow(/must start with postgres:\/\//);
      await expect(postgres.openPostgresStore('not a url', { cropKey })).rejects.toThrow(ConfigError);
      await expect(postgres.openPostgresStore('postgres://127.0.0.1/db', { cropKey, schema: 'Bad; DROP' })).rejects.toThrow(/schema "Bad; DROP"/);
    });
  });
});
