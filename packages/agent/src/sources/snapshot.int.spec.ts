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
});
