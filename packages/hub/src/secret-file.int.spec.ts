import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readOrCreateSecret } from './secret-file.js';

const dir = mkdtempSync(join(tmpdir(), 'ff-secret-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One process that reads or creates the secret, as a replica starting on a shared data dir does. */
function replica(path: string): Promise<string> {
  const module = pathToFileURL(join(import.meta.dirname, 'secret-file.ts')).href;
  const code = `const { readOrCreateSecret } = await import(${JSON.stringify(module)}); const { randomBytes } = await import('node:crypto');
    process.stdout.write(readOrCreateSecret(${JSON.stringify(path)}, () => randomBytes(32).toString('hex')).toString());`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (c) => (c === 0 ? resolve(out) : reject(new Error(err))));
  });
}

describe('readOrCreateSecret', () => {
  it('gives every one of several processes starting at once the same key, written once, owner-only', async () => {
    const path = join(dir, 'signing-key');
    const keys = await Promise.all(Array.from({ length: 6 }, () => replica(path)));
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(readFileSync(path, 'utf8')).toBe(keys[0]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 60_000);

  it('keeps an existing file as it is', () => {
    const path = join(dir, 'kept');
    const first = readOrCreateSecret(path, () => 'one');
    expect(readOrCreateSecret(path, () => 'two').toString()).toBe(first.toString());
    expect(first.toString()).toBe('one');
  });
});
