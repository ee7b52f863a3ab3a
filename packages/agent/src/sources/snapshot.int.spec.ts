import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { data, hasData } from '../../../../test/helpers.js';
import { SnapshotSource } from './snapshot.js';
import type { Frame } from './source.js';

describe.runIf(hasData('edge_demo'))('SnapshotSource against a real HTTP server', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  it('polls the JPEG at its interval, counts failures and recovers when the camera answers again', async () => {
    const jpeg = readFileSync(data('edge_demo', 'group', 'bbt1.jpg'));
    let failing = false;
    server = createServer((_req, res) => {
      if (failing) res.writeHead(503).end();
      else res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/snapshot.jpg`;
    const frames: Frame[] = [];
    const errors: string[] = [];
    const src = new SnapshotSource('cam', url, 50, (m) => errors.push(m));
    src.start((f) => {
      frames.push(f);
      return Promise.resolve();
    });
    await new Promise((r) => setTimeout(r, 400));
    expect(frames.length).toBeGreaterThanOrEqual(3);
    expect(Buffer.from(frames[0]!.bytes).equals(jpeg)).toBe(true);
    failing = true;
    await new Promise((r) => setTimeout(r, 300));
    expect(src.stats.errors).toBeGreaterThanOrEqual(1);
    expect(src.stats.state).toBe('backoff');
    expect(errors[0]).toBe(`snapshot ${url}: HTTP 503`);
    failing = false;
    const before = frames.length;
    await new Promise((r) => setTimeout(r, 1500)); // the first backoff is 1 s
    expect(frames.length).toBeGreaterThan(before);
    expect(src.stats.state).toBe('running');
    await src.stop();
    expect(src.stats.state).toBe('stopped');
  });

  it('sends credentials in the URL as Basic auth (fetch refuses them in URLs) and never logs them', async () => {
    const jpeg = readFileSync(data('edge_demo', 'group', 'bbt1.jpg'));
    const seen: (string | undefined)[] = [];
    let failing = false;
    server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      if (failing || req.headers.authorization !== `Basic ${Buffer.from('admin:p@ss:w0rd').toString('base64')}`) res.writeHead(401).end();
      else res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const errors: string[] = [];
    const frames: Frame[] = [];
    const src = new SnapshotSource('cam', `http://admin:p%40ss%3Aw0rd@127.0.0.1:${port}/snap.jpg`, 50, (m) => errors.push(m));
    src.start((f) => {
      frames.push(f);
      return Promise.resolve();
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(frames.length).toBeGreaterThanOrEqual(1);
    failing = true;
    await new Promise((r) => setTimeout(r, 300));
    await src.stop();
    expect(seen[0]).toBe(`Basic ${Buffer.from('admin:p@ss:w0rd').toString('base64')}`);
    expect(errors[0]).toBe(`snapshot http://***@127.0.0.1:${port}/snap.jpg: HTTP 401`);
    expect(errors.join('\n')).not.toContain('w0rd');
  });
});
