import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fetchModels, sha256File } from './fetch.js';
import { findModel, modelsDir } from './manifest.js';
import { decodeMessage, encodeMessage } from './protobuf.js';

// The set-up step has fetched the models into modelsDir(); these tests use that folder as a mirror.
describe('fetchModels (real files, real sha256)', () => {
  let dest: string;
  let mirror: string;
  beforeEach(() => {
    dest = mkdtempSync(join(tmpdir(), 'models-dest-'));
    mirror = mkdtempSync(join(tmpdir(), 'models-mirror-'));
  });
  afterEach(() => {
    rmSync(dest, { recursive: true, force: true });
    rmSync(mirror, { recursive: true, force: true });
  });

  it('copies from a mirror, verifies, and leaves verified files alone on the next run', async () => {
    const entry = findModel('yunet-s-dynamic');
    copyFileSync(join(modelsDir(), entry.file), join(mirror, entry.file));
    const first = await fetchModels({ mirror, dir: dest, ids: [entry.id], offline: true });
    expect(first).toEqual([{ kind: 'fetched', id: entry.id, from: join(mirror, entry.file), bytes: entry.bytes }]);
    expect(await sha256File(join(dest, entry.file))).toBe(entry.sha256);
    const second = await fetchModels({ mirror, dir: dest, ids: [entry.id], offline: true });
    expect(second).toEqual([{ kind: 'present', id: entry.id }]);
  });

  it('refuses a corrupt copy with one line naming the file and every source tried', async () => {
    const entry = findModel('yunet-s-dynamic');
    const bytes = readFileSync(join(modelsDir(), entry.file));
    bytes[1000] = bytes[1000]! ^ 0xff;
    writeFileSync(join(mirror, entry.file), bytes);
    const err = (await fetchModels({ mirror, dir: dest, ids: [entry.id], offline: true }).catch((e: Error) => e)) as Error;
    expect(err.message).toMatch(new RegExp(`model yunet-s-dynamic: cannot get ${entry.file}; tried .*${entry.file} \\(sha256 [0-9a-f]{12}… does not match`));
    expect(err.message).not.toContain('\n');
  });

  it('builds the dequantised embedder from the int8 one, byte for byte as pinned', async () => {
    const base = findModel('w600k-mbf-int8');
    copyFileSync(join(modelsDir(), base.file), join(mirror, base.file));
    const events = await fetchModels({ mirror, dir: dest, ids: ['w600k-mbf-fp32'], offline: true });
    expect(events[0]).toMatchObject({ kind: 'fetched', id: 'w600k-mbf-fp32', from: 'dequantize of w600k-mbf-int8' });
    expect(await sha256File(join(dest, findModel('w600k-mbf-fp32').file))).toBe(findModel('w600k-mbf-fp32').sha256);
  });

  it('round-trips an ONNX file through the protobuf codec unchanged', () => {
    const bytes = readFileSync(join(modelsDir(), findModel('yunet-s-dynamic').file));
    expect(Buffer.from(encodeMessage(decodeMessage(bytes))).equals(bytes)).toBe(true);
  });
});
