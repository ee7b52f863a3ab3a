import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pgPoolConfig } from '../packages/hub/src/store/postgres.js';

/** The PostgreSQL the end-to-end tests use (the machine's own by default). */
export const PG_URL = process.env.FACEFLEET_TEST_PG_URL ?? 'postgres://127.0.0.1:5432/test';

/** Why PostgreSQL cannot be used, or undefined when it answers. */
export async function postgresProblem(): Promise<string | undefined> {
  const client = new pg.Client({ ...pgPoolConfig(PG_URL), connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A fresh schema name per test run, so runs never see each other's rows. */
export const freshSchema = (prefix: string): string => `${prefix}_${randomBytes(4).toString('hex')}`;

export async function dropSchema(schema: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`not a schema name: ${schema}`);
  const client = new pg.Client(pgPoolConfig(PG_URL));
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}
