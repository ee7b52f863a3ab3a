import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';
import { api, createKey, startHub, type HubProcess } from './hub-process.js';

interface Entry {
  id: string;
  file: string;
  sha256: string;
  input: Record<string, unknown>;
}
const manifestModels = (JSON.parse(readFileSync(join(ROOT, 'models', 'manifest.json'), 'utf8')) as { models: Entry[] }).models;
const findModel = (id: string): Entry => manifestModels.find((m) => m.id === id)!;
const modelFile = (m: Entry): string => join(ROOT, 'models', 'files', m.file);

describe('model registry over HTTP (the hub as a process)', () => {
  let root: string;
  let hub: HubProcess;
  let admin: ReturnType<typeof api>;
  let viewer: ReturnType<typeof api>;
  let device: { id: string; secret: string };
  const det = findModel('scrfd-2.5g');
  const file = modelFile(det);
  const manifest = (id: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ id, kind: 'detector', family: 'scrfd', input: det.input, scoreThreshold: 0.6, ...extra });

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'facefleet-models-e2e-'));
    const adminKey = await createKey(join(root, 'hub'), 'admin');
    const viewerKey = await createKey(join(root, 'hub'), 'viewer');
    hub = await startHub(['--port', '0', '--mqtt-port', '0', '--data-dir', join(root, 'hub')]);
    admin = api(hub.base, adminKey);
    viewer = api(hub.base, viewerKey);
    device = (await (await admin.post('/api/v1/devices', { name: 'downloader' })).json()) as { id: string; secret: string };
  }, 120_000);

  afterAll(async () => {
    if (hub?.proc.exitCode === null) await hub.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const upload = (who: ReturnType<typeof api>, bytes: Buffer, manifestText: string | undefined) => {
    const form = new FormData();
    form.append('file', new Blob([bytes]), 'model.onnx');
    if (manifestText !== undefined) form.append('manifest', manifestText);
    return fetch(`${hub.base}/api/v1/models`, { method: 'POST', headers: who.headers(), body: form });
  };

  it('registers an uploaded ONNX file with its manifest, signed, and lists it beside the manifest models', async () => {
    const r = await upload(admin, readFileSync(file), manifest('scrfd-custom'));
    expect(r.status).toBe(201);
    const m = (await r.json()) as { id: string; sha256: string; signed: boolean; selfTest: { output: number[] } };
    expect(m.id).toBe('scrfd-custom');
    expect(m.sha256).toBe(det.sha256);
    expect(m.signed).toBe(true);
    expect(m.selfTest.output.length).toBeGreaterThan(100);
    const list = (await (await viewer.get('/api/v1/models')).json()) as { items: { id: string; kind: string; sha256: string }[] };
    expect(list.items.map((x) => x.id)).toEqual(expect.arrayContaining(['scrfd-custom', 'scrfd-500m', 'w600k-mbf-fp32']));
    const key = (await (await viewer.get('/api/v1/models/signing-key')).json()) as { pem: string };
    expect(key.pem).toMatch(/BEGIN PUBLIC KEY/);
  });

  it('refuses bad uploads with a clear 4xx: no manifest, bad JSON, wrong fields, not ONNX, a taken id, a viewer key', async () => {
    const bytes = readFileSync(file);
    const cases: [Response, number, RegExp][] = [
      [await upload(admin, bytes, undefined), 400, /manifest.*required/],
      [await upload(admin, bytes, '{"id":'), 400, /not valid JSON/],
      [await upload(admin, bytes, manifest('x', { kind: 'embedder' })), 400, /manifest\.(embeddingSize|family)/],
      [await upload(admin, Buffer.from('definitely not a model'), manifest('junk')), 400, /not a model this runtime can run/],
      [await upload(admin, bytes, manifest('scrfd-custom')), 409, /registered already/],
      [await upload(viewer, bytes, manifest('by-viewer')), 403, /admin/],
    ];
    for (const [res, status, message] of cases) {
      expect(res.status).toBe(status);
      expect(((await res.json()) as { message: string }).message).toMatch(message);
    }
    const ids = ((await (await viewer.get('/api/v1/models')).json()) as { items: { id: string }[] }).items.map((x) => x.id);
    expect(ids).not.toContain('junk');
  });

  it('serves the file to a device with its own credentials, resumable with Range', async () => {
    const url = `${hub.base}/api/v1/models/scrfd-custom/file`;
    const basic = (secret: string) => ({ authorization: `Basic ${Buffer.from(`${device.id}:${secret}`).toString('base64')}` });
    const bytes = readFileSync(file);
    const head = await fetch(url, { headers: { ...basic(device.secret), range: 'bytes=0-999' } });
    expect(head.status).toBe(206);
    const tail = await fetch(url, { headers: { ...basic(device.secret), range: 'bytes=1000-' } });
    expect(tail.status).toBe(206);
    expect(tail.headers.get('content-range')).toBe(`bytes 1000-${bytes.length - 1}/${bytes.length}`);
    const joined = Buffer.concat([Buffer.from(await head.arrayBuffer()), Buffer.from(await tail.arrayBuffer())]);
    expect(createHash('sha256').update(joined).digest('hex')).toBe(det.sha256);
    expect((await fetch(url, { headers: basic('wrong') })).status).toBe(401);
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { ...basic(device.secret), range: `bytes=${bytes.length}-` } })).status).toBe(416);
    const whole = await fetch(url, { headers: basic(device.secret) });
    expect(whole.status).toBe(200);
    expect(Number(whole.headers.get('content-length'))).toBe(bytes.length);
    await whole.arrayBuffer();
  });
});
