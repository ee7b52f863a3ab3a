import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GalleryStore } from '@facefleet/gallery';
import type { ModelRef, ModelReportMessage } from '@facefleet/protocol';
import { findModel } from '@facefleet/vision';
import { openAgentDb } from '../adapters/agent-db.js';
import { ModelFiles } from '../adapters/model-files.js';
import { ModelState } from '../adapters/model-state.js';
import { loadConfig, type AgentConfig } from '../config.js';
import { ModelHub } from '../testing/model-hub.js';
import { Metrics } from './metrics.js';
import { ModelUpdater } from './model-updater.js';
import { Pipeline } from './pipeline.js';
import { openAnalyzer, startModels, thresholdFor } from './running-models.js';

/**
 * The model updater against real parts: a real HTTP server (Basic auth, Range), real model files,
 * real onnxruntime sessions and self-tests, a real pipeline processing frames during the swaps,
 * real SQLite. The hub is played by ModelHub (testing/): it signs references with a generated Ed25519 key.
 */
const quiet = { info: () => undefined, warn: () => undefined, debug: () => undefined };
const dir = mkdtempSync(join(tmpdir(), 'model-updater-'));
const { privateKey: strangerKey } = generateKeyPairSync('ed25519');

describe('model updater (real HTTP, real models, real pipeline)', () => {
  const hub = new ModelHub(join(dir, 'hub'), { username: 'cam-1', password: 's3cret' });
  const reports: ModelReportMessage[] = [];
  let config: AgentConfig;
  let gallery: GalleryStore;
  let pipeline: Pipeline;
  let updater: ModelUpdater;
  let db: ReturnType<typeof openAgentDb>;
  let snapshotRequests = 0;
  let onSnapshotRequest: () => void = () => undefined;
  const metrics = new Metrics();
  let frame: Uint8Array;
  let feeding = false;
  let fed = 0;
  /** Files only the hub has (the project's own would be found on the device). */
  const hubFiles: Record<string, string> = {};
  /** The hub's scrfd-2.5g (a file this device does not have). */
  let detector25: ModelRef;

  const statesOf = (rolloutId: string) => reports.filter((r) => r.rolloutId === rolloutId).map((r) => r.state);
  const lastOf = (rolloutId: string) => reports.filter((r) => r.rolloutId === rolloutId).at(-1)!;
  const assign = async (rolloutId: string, models: { detector?: ModelRef; embedder?: ModelRef }): Promise<void> => {
    updater.onConfig({ galleries: ['default'], rolloutId, models });
    await updater.idle();
  };
  /** Frames keep arriving during an update, as from a camera. */
  const feed = async (): Promise<void> => {
    feeding = true;
    while (feeding) {
      await pipeline.offer({ source: 'cam', at: Date.now(), bytes: frame, label: String(fed++) }, true);
      await new Promise((r) => setTimeout(r, 15));
    }
  };
  const processed = () => metrics.get('facefleet_frames_in_total', { source: 'cam' }) - metrics.get('facefleet_frames_dropped_total', { source: 'cam' });

  beforeAll(async () => {
    await hub.start();
    for (const id of ['scrfd-2.5g', 'yunet-s-dynamic']) hubFiles[id] = hub.register(id);
    const yaml = join(dir, 'agent.yaml');
    writeFileSync(
      yaml,
      [
        'deviceId: cam-1',
        `dataDir: ${join(dir, 'data')}`,
        'sources: []',
        'mqtt: {url: "mqtt://127.0.0.1:1", username: cam-1, password: s3cret}',
        'recognition: {threads: 1}',
        `models: {galleryWaitMs: 1200, signingKey: ${JSON.stringify(hub.publicKeyPem)}}`,
      ].join('\n'),
    );
    config = loadConfig(yaml, {}, {});
    db = openAgentDb(join(dir, 'agent.db'));
    gallery = GalleryStore.open(join(dir, 'gallery.db'));
    const running = await startModels(config, {}, new ModelFiles(config.dataDir), quiet);
    const analyzer = await openAnalyzer(running, config);
    frame = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 120, g: 110, b: 100 } } }).jpeg().toBuffer();
    pipeline = new Pipeline({ config, analyzer, gallery, metrics, threshold: thresholdFor(running.embedder, config), onEvent: () => undefined, log: quiet });
    pipeline.start();
    updater = new ModelUpdater({
      config,
      db,
      running,
      gallery,
      publish: (_topic, payload) => void reports.push(JSON.parse(payload) as ModelReportMessage),
      requestSnapshot: () => {
        snapshotRequests++;
        onSnapshotRequest();
      },
      swap: (next, threshold) => pipeline.setAnalyzer(next, threshold),
      log: quiet,
      download: { attempts: 3, retryDelayMs: 50, idleTimeoutMs: 5000 },
      galleryPollMs: 50,
    });
  }, 60_000);

  afterAll(async () => {
    feeding = false;
    await updater?.stop();
    await pipeline?.stop();
    await pipeline?.current.analyzer.close();
    gallery?.close();
    db?.close();
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('switches the detector: downloads with the device credentials, resumes a cut download, verifies, self-tests, swaps while frames keep flowing', async () => {
    expect(pipeline.current.analyzer.detectorId).toBe('scrfd-500m');
    const ref = (detector25 = await hub.ref('scrfd-2.5g', { file: hubFiles['scrfd-2.5g'] }));
    expect(ref.sha256).not.toBe(findModel('scrfd-2.5g').sha256);
    hub.cutOnce.add('scrfd-2.5g');
    const feeder = feed();
    const before = processed();
    await assign('r1', { detector: ref });
    const during = processed() - before;
    await new Promise((r) => setTimeout(r, 300));
    const after = processed();
    feeding = false;
    await feeder;
    expect(statesOf('r1')).toEqual(['downloading', 'verifying', 'testing', 'active']);
    expect(lastOf('r1')).toMatchObject({ kind: 'detector', modelId: 'scrfd-2.5g', running: 'scrfd-2.5g' });
    expect(pipeline.current.analyzer.detectorId).toBe('scrfd-2.5g');
    expect(pipeline.current.analyzer.embedderId).toBe('w600k-mbf-fp32');
    // The first request was cut half-way; the second asked for the rest only.
    const asked = hub.requests.filter((r) => r.path === 'scrfd-2.5g');
    expect(asked).toHaveLength(2);
    expect(asked[0]!.range).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(asked[1]!.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThan(ref.bytes);
    expect(asked.every((r) => r.auth === `Basic ${Buffer.from('cam-1:s3cret').toString('base64')}`)).toBe(true);
    const files = new ModelFiles(config.dataDir);
    expect(existsSync(files.path(ref.sha256))).toBe(true);
    expect(existsSync(files.partPath(ref.sha256))).toBe(false);
    expect(createHash('sha256').update(readFileSync(files.path(ref.sha256))).digest('hex')).toBe(ref.sha256);
    expect(new ModelState(db).active().detector?.id).toBe('scrfd-2.5g');
    // Recognition never stopped: frames went through during the update and after it, none failed.
    expect(during).toBeGreaterThan(0);
    expect(after).toBeGreaterThan(before + during);
    expect(metrics.get('facefleet_frame_errors_total', { source: 'cam' })).toBe(0);
  });

  it('refuses a file whose bytes do not match the sha256 of its reference, deletes it, and keeps the running model', async () => {
    const wrongSha = createHash('sha256').update('not the bytes the server sends').digest('hex');
    const ref = await hub.ref('yunet-s-dynamic', { file: hubFiles['yunet-s-dynamic'], sha256: wrongSha });
    await assign('r2', { detector: ref });
    expect(statesOf('r2')).toEqual(['downloading', 'verifying', 'failed']);
    expect(lastOf('r2').reason).toMatch(/sha256 mismatch/);
    expect(lastOf('r2').running).toBe('scrfd-2.5g');
    expect(pipeline.current.analyzer.detectorId).toBe('scrfd-2.5g');
    expect(existsSync(new ModelFiles(config.dataDir).path(wrongSha))).toBe(false);
  });

  it('refuses a reference signed by an unknown key before downloading anything', async () => {
    const requests = hub.requests.length;
    const ref = await hub.ref('yunet-s-dynamic', { file: hubFiles['yunet-s-dynamic'], key: strangerKey });
    await assign('r3', { detector: ref });
    expect(statesOf('r3')).toEqual(['failed']);
    expect(lastOf('r3').reason).toMatch(/unknown key/);
    expect(hub.requests.length).toBe(requests);
    expect(pipeline.current.analyzer.detectorId).toBe('scrfd-2.5g');
  });

  it('refuses a reference whose self-test was altered after signing (bad signature)', async () => {
    const good = await hub.ref('yunet-s-dynamic', { file: hubFiles['yunet-s-dynamic'] });
    const tampered: ModelRef = { ...good, selfTest: { ...good.selfTest, output: good.selfTest.output.map((v, i) => (i === 0 ? v + 1 : v)) } };
    await assign('r4', { detector: tampered });
    expect(statesOf('r4')).toEqual(['failed']);
    expect(lastOf('r4').reason).toMatch(/bad signature/);
    expect(pipeline.current.analyzer.detectorId).toBe('scrfd-2.5g');
  });

  it('fails the self-test of a correctly signed reference whose expected output is wrong, once, without retrying the same assignment', async () => {
    const real = (await hub.ref('yunet-s-dynamic', { file: hubFiles['yunet-s-dynamic'] })).selfTest;
    const ref = await hub.ref('yunet-s-dynamic', { file: hubFiles['yunet-s-dynamic'], selfTest: { ...real, output: real.output.map((v) => -v) } });
    await assign('r5', { detector: ref });
    expect(statesOf('r5')).toEqual(['downloading', 'verifying', 'testing', 'failed']);
    expect(lastOf('r5').reason).toMatch(/self-test output differs/);
    expect(pipeline.current.analyzer.detectorId).toBe('scrfd-2.5g');
    // A file that fails its self-test is deleted.
    expect(existsSync(new ModelFiles(config.dataDir).path(ref.sha256))).toBe(false);
    // The retained config is delivered again (a reconnect): the same assignment is not tried again.
    await assign('r5', { detector: ref });
    expect(statesOf('r5')).toHaveLength(4);
  });

  it('switches the embedder only once the gallery holds templates of the new model, asking the hub for a snapshot', async () => {
    const v = (n: number, seed: number) => {
      const a = Float32Array.from({ length: n }, (_, i) => Math.sin(i * seed + 1));
      const norm = Math.hypot(...a);
      return a.map((x) => x / norm);
    };
    gallery.applySync('default', { snapshot: true, toSeq: 1, changes: [{ op: 'upsert', subjectId: 'ann', name: 'Ann', templates: [{ id: 'a1', modelId: 'w600k-mbf-fp32', vector: v(512, 1) }] }] });
    const ref = await hub.ref('mobilefacenet-128d-a');
    // The whole wanted state: the detector stays the hub's (an absent kind means: the agent's own).
    await assign('r6', { detector: detector25, embedder: ref });
    expect(snapshotRequests).toBe(1);
    expect(statesOf('r6')).toEqual(['verifying', 'testing', 'failed']); // the file is the project's: no download
    expect(lastOf('r6').reason).toMatch(/gallery not ready: 1 subject\(s\) have no template of mobilefacenet-128d-a/);
    expect(pipeline.current.analyzer.embedderId).toBe('w600k-mbf-fp32');
    // The hub re-embedded: the snapshot it answers with holds both models' templates.
    onSnapshotRequest = () =>
      setTimeout(() => {
        gallery.applySync('default', {
          snapshot: true,
          toSeq: 2,
          changes: [{ op: 'upsert', subjectId: 'ann', name: 'Ann', templates: [{ id: 'a1', modelId: 'w600k-mbf-fp32', vector: v(512, 1) }, { id: 'a2', modelId: 'mobilefacenet-128d-a', vector: v(128, 2) }] }],
        });
      }, 200);
    await assign('r7', { detector: detector25, embedder: ref });
    expect(snapshotRequests).toBe(2);
    expect(statesOf('r7')).toEqual(['verifying', 'testing', 'active']);
    expect(pipeline.current.analyzer.embedderId).toBe('mobilefacenet-128d-a');
    expect(pipeline.current.analyzer.detectorId).toBe('scrfd-2.5g');
    expect(pipeline.current.threshold).toBe(0.36); // the new embedder's manifest threshold
    expect(updater.running.embedder.ref?.id).toBe('mobilefacenet-128d-a');
    expect(gallery.search('mobilefacenet-128d-a', v(128, 2), 1)[0]!.subjectId).toBe('ann');
  });

  it('rolls back to its own models when the assignment is withdrawn, and back again without a download', async () => {
    await assign('r8', {});
    expect(reports.filter((r) => r.rolloutId === 'r8').map((r) => `${r.kind}:${r.state}`)).toEqual(['detector:testing', 'detector:active', 'embedder:testing', 'embedder:active']);
    expect([pipeline.current.analyzer.detectorId, pipeline.current.analyzer.embedderId]).toEqual(['scrfd-500m', 'w600k-mbf-fp32']);
    expect(pipeline.current.threshold).toBe(0.32);
    const state = new ModelState(db);
    expect(state.active()).toEqual({});
    expect(state.previous().detector?.id).toBe('scrfd-2.5g');
    const requests = hub.requests.length;
    await assign('r9', { detector: detector25 });
    expect(statesOf('r9')).toEqual(['verifying', 'testing', 'active']);
    expect(hub.requests.length).toBe(requests);
    expect(pipeline.current.analyzer.detectorId).toBe('scrfd-2.5g');
    // Per kind, only the file that runs and the one before it are kept (the project's own are never touched).
    expect(readdirSync(join(config.dataDir, 'models'))).toEqual([`${detector25.sha256}.onnx`]);
  });

  it('reports an unsigned reference as refused', () => {
    const ref = { id: 'scrfd-2.5g', kind: 'detector', sha256: findModel('scrfd-2.5g').sha256, bytes: 1, url: 'x', manifest: {}, selfTest: {} };
    updater.onInvalidConfig(Buffer.from(JSON.stringify({ galleries: [], rolloutId: 'r10', models: { detector: ref } })));
    expect(statesOf('r10')).toEqual(['failed']);
    expect(lastOf('r10').reason).toMatch(/refused: invalid model reference/);
  });

  it('opens the models recorded in models.active at start, and falls back to its own when a file no longer verifies', async () => {
    const files = new ModelFiles(config.dataDir);
    const active = new ModelState(db).active();
    const logs: string[] = [];
    const log = { info: (_o: object, m: string) => void logs.push(m), warn: (_o: object, m: string) => void logs.push(m) };
    const again = await startModels(config, active, files, log);
    expect([again.detector.id, again.detector.path]).toEqual(['scrfd-2.5g', files.path(detector25.sha256)]);
    expect(again.embedder.ref).toBeUndefined();
    writeFileSync(files.path(detector25.sha256), 'corrupt');
    const fallback = await startModels(config, active, files, log);
    expect(fallback.detector.id).toBe('scrfd-500m');
    expect(logs.at(-1)).toMatch(/does not match its sha256: running the configured model/);
  });
});
