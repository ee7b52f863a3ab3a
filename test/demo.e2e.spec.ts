import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { facefleet } from './cli.js';
import { hasData } from './helpers.js';

describe.runIf(hasData('faceapi_bbt') && hasData('edge_demo'))('the main command (facefleet demo)', () => {
  it('names the bbt people, then runs hub + agent on the embedded defaults and exits when not at a terminal', async () => {
    const out = mkdtempSync(join(tmpdir(), 'facefleet-demo-'));
    try {
      const r = await facefleet(['demo', '--out', out], { timeoutMs: 240_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/Enrolled 8 people \(40 photos\)/);
      expect(r.stdout).toMatch(/Hub: 8 people enrolled over REST/);
      expect(r.stdout).toMatch(/gallery synced from the hub/);
      const received = /Events the hub received \((\d+)\)/.exec(r.stdout);
      expect(Number(received?.[1])).toBeGreaterThanOrEqual(20);
      expect(r.stdout).toMatch(/API docs\s+http:\/\/127\.0\.0\.1:\d+\/api\/docs/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300_000);
});

describe('facefleet hub with a taken MQTT port', () => {
  it('says so in one line and exits (no lingering broker)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'facefleet-hub-mqtt-'));
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await facefleet(['hub', '--port', '0', '--mqtt-port', String(port), '--data-dir', dir], { timeoutMs: 60_000 });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n').at(-1)).toBe(`facefleet hub: MQTT port ${port} on 127.0.0.1 is already in use (choose another with --mqtt-port)`);
    } finally {
      blocker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
