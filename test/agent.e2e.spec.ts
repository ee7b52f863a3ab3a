import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AckPeer } from '../packages/agent/src/testing/ack-peer.js';
import { freePort, TestBroker } from '../packages/agent/src/testing/broker.js';
import { agentEvents, metric, metrics, startAgent, writeYaml, type AgentProcess } from './agent-process.js';
import { facefleet } from './cli.js';
import { BBT_PRESENT, data, hasData, hasTool } from './helpers.js';

const PRESENT = BBT_PRESENT;

describe.runIf(hasData('faceapi_bbt') && hasData('edge_demo'))('facefleet agent as a process', () => {
  let root: string;
  let seed: string;
  const running: AgentProcess[] = [];
  let n = 0;

  /** A fresh agent directory with config and a seeded gallery. */
  async function agentDir(yaml: (dir: string) => string, seedGallery = true): Promise<{ dir: string; config: string }> {
    const dir = join(root, `agent${n++}`);
    mkdirSync(join(dir, 'in'), { recursive: true });
    const config = writeYaml(join(dir, 'agent.yaml'), yaml(dir));
    if (seedGallery) {
      const r = await facefleet(['agent', 'import', '--config', config, seed]);
      expect(r.code, r.stderr).toBe(0);
    }
    return { dir, config };
  }

  async function start(config: string, env: NodeJS.ProcessEnv = {}): Promise<AgentProcess> {
    const a = await startAgent(config, env);
    running.push(a);
    return a;
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'facefleet-agent-e2e-'));
    seed = join(root, 'seed.db');
    const people = data('faceapi_bbt', 'identities');
    for (const p of readdirSync(people)) {
      const r = await facefleet(['enroll', '--gallery', seed, '--subject', p, ...readdirSync(join(people, p)).map((f) => join(people, p, f))]);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 300_000);

  afterAll(async () => {
    for (const a of running) if (a.proc.exitCode === null) await a.stop('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  it('names the people present in the bbt photos, nobody in the negatives, and stops cleanly on SIGTERM', async () => {
    const { dir, config } = await agentDir((d) => `deviceId: folder-cam\ndataDir: ${d}/data\nsources:\n  - {type: folder, path: ${d}/in, name: door}\n`);
    // Some files are there at start, the rest are dropped in while the agent runs.
    copyFileSync(data('edge_demo', 'group', 'bbt1.jpg'), join(dir, 'in', 'bbt1.jpg'));
    const agent = await start(config);
    for (const f of ['bbt2.jpg', 'bbt3.jpg', 'bbt4.jpg', 'bbt5.jpg']) copyFileSync(data('edge_demo', 'group', f), join(dir, 'in', f));
    for (const f of readdirSync(data('edge_demo', 'negatives'))) copyFileSync(data('edge_demo', 'negatives', f), join(dir, 'in', `neg-${f}`));
    const total = 5 + readdirSync(data('edge_demo', 'negatives')).length;
    await until2(async () => metric(await metrics(agent.port), 'facefleet_frames_in_total') >= total, 120_000, 'all files read');
    await until2(async () => (await (await fetch(`http://127.0.0.1:${agent.port}/healthz`)).json() as { outboxDepth: number }).outboxDepth >= 20, 60_000, 'events');
    await new Promise((r) => setTimeout(r, 1500)); // the last frames through the pipeline
    expect(await agent.stop('SIGTERM')).toBe(0);
    const events = await agentEvents(config);
    const byImage = new Map<string, string[]>();
    for (const e of events) {
      expect(e.type).toBe('recognition');
      const file = e.source!.split(':')[1]!;
      byImage.set(file, [...(byImage.get(file) ?? []), e.subject!]);
    }
    for (const [file, names] of byImage) {
      expect(PRESENT[file], `${file} produced events`).toBeDefined();
      for (const name of names) expect(PRESENT[file], `${file}: ${name}`).toContain(name);
      expect(new Set(names).size).toBe(names.length);
    }
    expect(events.length).toBeGreaterThanOrEqual(22);
    expect(events.every((e) => !e.delivered)).toBe(true); // no hub configured: all kept
  }, 240_000);

  it('keeps events with no broker, delivers each once when a broker appears, and loses nothing to kill -9', async () => {
    const port = await freePort();
    const { dir, config } = await agentDir((d) => `deviceId: offline-cam\ndataDir: ${d}/data\nsources:\n  - {type: folder, path: ${d}/in}\nmqtt: {url: "mqtt://127.0.0.1:${port}"}\noutbox: {retryMs: 500}\n`);
    for (const f of ['bbt3.jpg', 'bbt4.jpg']) copyFileSync(data('edge_demo', 'group', f), join(dir, 'in', f));
    const first = await start(config);
    await until2(async () => metric(await metrics(first.port), 'facefleet_events_total') >= 8, 60_000, 'events from bbt3 and bbt4');
    // kill -9: nothing written so far may be lost.
    const before = (await agentEvents(config)).length;
    expect(await first.stop('SIGKILL')).toBeNull();
    const stored = await agentEvents(config);
    expect(stored.length).toBeGreaterThanOrEqual(before);
    expect(stored.every((e) => !e.delivered)).toBe(true);
    // Back up, still without a broker; more photos arrive.
    copyFileSync(data('edge_demo', 'group', 'bbt5.jpg'), join(dir, 'in', 'bbt5.jpg'));
    const second = await start(config);
    await until2(async () => (await agentEvents(config)).length >= stored.length + 5, 60_000, 'bbt5 events');
    const all = await agentEvents(config);
    expect(all.filter((e) => e.source?.endsWith('bbt3.jpg')).length).toBe(5); // processed once, not again after the restart
    // The broker and the receiving side appear.
    const broker = await TestBroker.start(port);
    const peer = await AckPeer.connect(broker.url);
    try {
      await until2(async () => (await agentEvents(config)).every((e) => e.delivered), 60_000, 'delivery');
      expect([...peer.records.keys()].sort()).toEqual(all.map((e) => e.id).sort());
      const status = JSON.parse((await facefleet(['agent', 'status', '--config', config, '--json'])).stdout) as Record<string, unknown>;
      expect(status).toMatchObject({ running: true, link: 'connected', outboxDepth: 0 });
      expect(await second.stop('SIGTERM')).toBe(0);
      expect(peer.states.get('offline-cam')?.online).toBe(false);
    } finally {
      await peer.close();
      await broker.stop();
    }
  });

  it.runIf(hasData('edge_demo') && hasTool('ffmpeg'))('names nobody in a video of people not enrolled; one event per face passage, not per frame', async () => {
    const { config } = await agentDir((d) =>
      `deviceId: stream-cam\ndataDir: ${d}/data\nsources:\n  - {type: stream, url: ${data('edge_demo', 'video', 'short_hamilton_clip.mp4')}, name: hamilton, fps: 10}\n  - {type: stream, url: ${data('edge_demo', 'video', 'Megamind.avi')}, name: megamind, fps: 10}\nrecognition: {unknownEvents: true}\ntracker: {maxAgeMs: 800}\n`,
    );
    const agent = await start(config);
    await until2(async () => {
      const h = (await (await fetch(`http://127.0.0.1:${agent.port}/healthz`)).json()) as { sources: Record<string, { state: string }> };
      return Object.values(h.sources).every((s) => s.state === 'ended');
    }, 120_000, 'both videos played');
    await new Promise((r) => setTimeout(r, 2000));
    const m = await metrics(agent.port);
    const frames = metric(m, 'facefleet_frames_in_total');
    expect(await agent.stop('SIGTERM')).toBe(0);
    const events = await agentEvents(config);
    expect(events.filter((e) => e.type === 'recognition')).toEqual([]);
    const megamind = events.filter((e) => e.source?.startsWith('megamind'));
    expect(frames).toBeGreaterThan(100);
    expect(megamind.length).toBeGreaterThanOrEqual(1);
    expect(megamind.length).toBeLessThanOrEqual(12); // a handful of passages, against ~108 frames
  }, 240_000);

  it('reads a webcam through node-webcam and fswebcam (a stand-in writing real JPEGs) and keeps running when the camera is missing', async () => {
    const bin = join(root, 'bin');
    mkdirSync(bin, { recursive: true });
    // The stand-in takes fswebcam's arguments and writes a real photo to the last one.
    writeFileSync(join(bin, 'fswebcam'), `#!/bin/sh\nfor last; do :; done\ncase "$*" in *video99*) echo "stat: No such file or directory" >&2; exit 0;; esac\ncp "${data('edge_demo', 'group', 'bbt3.jpg')}" "$last"\n`);
    chmodSync(join(bin, 'fswebcam'), 0o755);
    const { config } = await agentDir((d) => `deviceId: usb-cam\ndataDir: ${d}/data\nsources:\n  - {type: webcam, device: /dev/video0, width: 640, height: 480, fps: 4, name: usb}\n  - {type: webcam, device: /dev/video99, name: missing}\n`);
    const agent = await start(config, { PATH: `${bin}:${process.env.PATH ?? ''}` });
    await until2(async () => (await agentEvents(config)).length >= 5, 60_000, 'webcam events');
    const h = (await (await fetch(`http://127.0.0.1:${agent.port}/healthz`)).json()) as { sources: Record<string, { errors: number; state: string }> };
    expect(h.sources.missing!.errors).toBeGreaterThan(0);
    expect(h.sources.usb!.state).toBe('running');
    expect(await agent.stop('SIGTERM')).toBe(0);
    const names = (await agentEvents(config)).map((e) => e.subject).sort();
    expect(names).toEqual(['howard', 'leonard', 'penny', 'raj', 'sheldon']); // once each despite many frames
  }, 180_000);

  it.runIf(hasTool('ffmpeg'))('reads a stream served by ffmpeg over HTTP, one an RTSP camera pushes, and survives a truncated video', async () => {
    const httpPort = await freePort();
    const rtspPort = await freePort();
    const video = data('edge_demo', 'video', 'Megamind.avi');
    // ffmpeg as an HTTP server of an MPEG-TS stream (pulled by the agent).
    const server = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', video, '-c:v', 'mpeg4', '-f', 'mpegts', '-listen', '1', `http://127.0.0.1:${httpPort}/live.ts`], { stdio: 'ignore' });
    const broken = join(root, 'truncated.mp4');
    const full = readFileSync(data('edge_demo', 'video', 'short_hamilton_clip.mp4'));
    writeFileSync(broken, full.subarray(0, Math.floor(full.length / 3)));
    let camera: ReturnType<typeof spawn> | undefined;
    try {
      const { config } = await agentDir(
        (d) =>
          `deviceId: stream-cam2\ndataDir: ${d}/data\nsources:\n` +
          `  - {type: stream, url: "http://127.0.0.1:${httpPort}/live.ts", name: http, fps: 5}\n` +
          `  - {type: stream, url: "rtsp://127.0.0.1:${rtspPort}/cam", listen: true, name: rtsp, fps: 5}\n` +
          `  - {type: stream, url: ${broken}, loop: true, name: broken, fps: 5}\n`,
        false,
      );
      const agent = await start(config);
      await new Promise((r) => setTimeout(r, 1000));
      // An RTSP camera pushing its stream to the agent (ffmpeg as the camera).
      camera = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', video, '-c:v', 'mpeg4', '-f', 'rtsp', '-rtsp_transport', 'tcp', `rtsp://127.0.0.1:${rtspPort}/cam`], { stdio: 'ignore' });
      type Health = { status: string; sources: Record<string, { frames: number; errors: number; restarts: number }> };
      const health = async (): Promise<Health> => (await (await fetch(`http://127.0.0.1:${agent.port}/healthz`)).json()) as Health;
      await until2(async () => {
        const h = await health();
        return h.sources.http!.frames >= 10 && h.sources.rtsp!.frames >= 10 && h.sources.broken!.errors + h.sources.broken!.restarts > 0;
      }, 90_000, 'http and rtsp frames, and broken-stream errors');
      expect((await health()).status).toBe('ok');
      expect(await agent.stop('SIGTERM')).toBe(0);
    } finally {
      server.kill('SIGKILL');
      camera?.kill('SIGKILL');
    }
  }, 180_000);

  it('refuses a second agent on the same data directory', async () => {
    const { config } = await agentDir((d) => `deviceId: locked\ndataDir: ${d}/data\nsources: []\n`, false);
    const first = await start(config);
    const second = await facefleet(['agent', '--config', config]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/another agent \(pid \d+\) is running with data directory/);
    expect(await first.stop('SIGTERM')).toBe(0);
    // After a kill -9 the stale lock is taken over.
    const third = await start(config);
    expect(await third.stop('SIGKILL')).toBeNull();
    const fourth = await start(config);
    const code4 = await fourth.stop('SIGTERM');
    expect(code4, fourth.stderr().slice(-1500)).toBe(0);
  }, 120_000);

  it('exits 1 with one clear line for a bad config or a missing model', async () => {
    const bad = writeYaml(join(root, 'bad.yaml'), 'deviceId: x\ndataDir: d\nsources:\n  - {type: folder}\n');
    const r = await facefleet(['agent', '--config', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('facefleet agent: config: sources[0].path is required');
    const { config } = await agentDir((d) => `deviceId: nomodel\ndataDir: ${d}/data\nsources: []\n`, false);
    const m = await facefleet(['agent', '--config', config], { env: { FACEFLEET_MODELS_DIR: join(root, 'no-models') } });
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/model \S+ is missing: .*no-models.*\(run: pnpm exec facefleet models fetch\)/);
  });
});

async function until2(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
