// The peer in the benchmark (issue 6, item 3): @vladmandic/face-api on the same demo photos and the
// same LFW3D protocol as ours. face-api runs on tfjs's WASM backend, never tfjs-node (whose install
// downloads a binary). tfjs turns WASM threads off in Node (WASM_HAS_MULTITHREAD_SUPPORT is false
// there, tensorflow/tfjs#3830), so `threads` cores are used the way face-api's own Node demo
// (demo/node-multiprocess.js) does it: that many workers, each a single-threaded model instance,
// each taking the next image from one queue.
//
// LFW3D images are 90x90 frontalised crops (eyes to mouth, no face outline): face-api's detectors
// find almost none of them, even padded as ours pads small images. So two figures: `lfw3d`, the
// protocol end to end as ours runs it (detect, largest face, describe; no face = a failed pair),
// and `lfw3dCrop`, face-api's descriptor computed on the whole crop with no detection (its
// computeFaceDescriptor on a given face image): what its recogniser does when handed the face.
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { FacefleetError } from '@facefleet/protocol';
import { decodeImage, parsePairsFile, verificationReport, type LabelledPair, type RgbImage } from '@facefleet/vision';
import { spread, type Spread } from './machine.js';

export type PeerBackend = 'wasm' | 'cpu';
export type PeerDetector = 'ssdMobilenetv1' | 'tinyFaceDetector';

export interface PeerOptions {
  /** Cores to use: that many workers (tfjs's WASM backend is single-threaded in Node). */
  threads: number;
  /** Throughput only: no LFW3D (the result's lfw3d fields are then absent). */
  speedOnly?: boolean;
  /** Quick mode: about this many LFW3D pairs, the same number from each fold and kind. Default: all. */
  lfwPairs?: number;
  /** Demo-photo passes after the warm-up (default 3). */
  passes?: number;
  backend?: PeerBackend;
  detector?: PeerDetector;
  log: (t: string) => void;
}

export interface PeerLfw3d {
  /** 'detect': detect, largest face, landmarks, descriptor; 'crop': descriptor of the whole crop. */
  mode: 'detect' | 'crop';
  pairs: number;
  images: number;
  /** How a pair is scored: face-api compares descriptors by euclidean distance (its FaceMatcher). */
  score: 'negative euclidean distance';
  accuracy: number;
  accuracyStd: number;
  tarAtFar: { '0.001': number; '0.01': number };
  auc: number;
  /** The same pairs scored by cosine similarity instead, for reference. */
  accuracyCosine: number;
  /** Images where face-api found no face (their pairs score below every real pair, as ours do). */
  failures: number;
}

export interface PeerResult {
  name: '@vladmandic/face-api';
  version: string;
  tfjs: string;
  backend: string;
  threads: number;
  workers: number;
  /** Face detector, then the landmark and descriptor nets face-api documents for recognition. */
  models: { detector: string; landmarks: 'faceLandmark68Net'; recogniser: 'faceRecognitionNet' };
  images: number;
  faces: number;
  passes: number;
  /** Pass wall time / images, spread over passes (as core.stagesMsPerImage.total for ours). */
  msPerImage: Spread;
  imagesPerSec: number;
  /** One image's time inside one worker (decode, detect, landmarks, descriptors), over all images. */
  imageLatencyMs: Spread;
  lfw3d: PeerLfw3d;
  lfw3dCrop: PeerLfw3d;
  /** Wall time of the LFW3D pass (both figures come from it). */
  lfw3dSeconds: number;
}

const ROLE = 'facefleet-bench-face-api-peer';
const require = createRequire(import.meta.url);

interface WorkerInit {
  role: typeof ROLE;
  backend: PeerBackend;
  detector: PeerDetector;
}
interface Job {
  id: number;
  file: string;
  /** 'all': every face described (throughput); 'largest': the largest face's descriptor and the whole image's (LFW). */
  mode: 'all' | 'largest';
}
type Reply =
  | { kind: 'ready'; backend: string }
  | { kind: 'done'; id: number; ms: number; faces: number; descriptor: Float32Array | null; crop: Float32Array | null; failure?: string }
  | { kind: 'error'; message: string };

/** Measure face-api's throughput on the demo photos and its LFW3D accuracy. */
export async function benchPeer(dataDir: string, opts: PeerOptions): Promise<PeerResult> {
  const detector = opts.detector ?? 'ssdMobilenetv1';
  const pool = await Pool.start(Math.max(1, opts.threads), { role: ROLE, backend: opts.backend ?? 'wasm', detector });
  try {
    const files = ['group', 'expressions', 'misc'].flatMap((d) => readdirSync(join(dataDir, 'edge_demo', d)).map((f) => join(dataDir, 'edge_demo', d, f)));
    const passes = opts.passes ?? 3;
    const perImage: number[] = [];
    const latency: number[] = [];
    let faces = 0;
    for (let pass = -1; pass < passes; pass++) {
      const started = performance.now();
      const done = await pool.run(files.map((file) => ({ file, mode: 'all' })));
      const ms = performance.now() - started;
      faces = done.reduce((n, d) => n + d.faces, 0);
      if (pass < 0) continue; // warm-up: wasm compilation, weights, first-shape kernels
      perImage.push(ms / files.length);
      latency.push(...done.map((d) => d.ms));
      opts.log(`peer: pass ${pass + 1}/${passes}: ${files.length} images, ${faces} faces, ${(ms / files.length).toFixed(0)} ms per image`);
    }
    const msPerImage = spread(perImage);
    const lfw = opts.speedOnly === true ? undefined : await peerLfw3d(pool, dataDir, opts);
    return {
      name: '@vladmandic/face-api',
      version: packageVersion('@vladmandic/face-api'),
      tfjs: packageVersion('@tensorflow/tfjs'),
      backend: pool.backend,
      threads: opts.threads,
      workers: pool.size,
      models: { detector, landmarks: 'faceLandmark68Net', recogniser: 'faceRecognitionNet' },
      images: files.length,
      faces,
      passes,
      msPerImage,
      imagesPerSec: Math.round((1000 / msPerImage.median) * 100) / 100,
      imageLatencyMs: spread(latency),
      ...(lfw ?? {}),
    } as PeerResult;
  } finally {
    await pool.close();
  }
}

/** The LFW3D pairs (all, or `limit` of them spread evenly over folds and kinds). */
export function lfw3dPairs(dataDir: string, limit?: number): LabelledPair[] {
  const all = parsePairsFile(join(dataDir, 'lfw3d', 'pairs.txt'), join(dataDir, 'lfw3d', 'images'));
  if (limit === undefined || limit >= all.length) return all;
  const perGroup = Math.max(1, Math.floor(limit / 20)); // 10 folds x (same, different)
  const taken = new Map<string, number>();
  return all.filter((p) => {
    const key = `${p.fold}/${p.same}`;
    const n = taken.get(key) ?? 0;
    taken.set(key, n + 1);
    return n < perGroup;
  });
}

async function peerLfw3d(pool: Pool, dataDir: string, opts: PeerOptions): Promise<Pick<PeerResult, 'lfw3d' | 'lfw3dCrop' | 'lfw3dSeconds'>> {
  const pairs = lfw3dPairs(dataDir, opts.lfwPairs);
  const images = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
  const started = performance.now();
  const done = await pool.run(
    images.map((file) => ({ file, mode: 'largest' })),
    (n) => {
      if (n % 500 === 0 || n === images.length) opts.log(`peer: LFW3D ${n}/${images.length} images (${(n / ((performance.now() - started) / 1000)).toFixed(1)}/s)`);
    },
  );
  for (const [i, d] of done.entries()) if (d.failure !== undefined && d.failure !== 'noFace') opts.log(`peer: ${images[i]!}: ${d.failure}`);
  const detected = new Map(images.map((f, i) => [f, done[i]!.descriptor]));
  const crops = new Map(images.map((f, i) => [f, done[i]!.crop]));
  return { lfw3d: scorePairs(pairs, detected, 'detect'), lfw3dCrop: scorePairs(pairs, crops, 'crop'), lfw3dSeconds: Math.round((performance.now() - started) / 100) / 10 };
}

/** The 10-fold report of ours (verificationReport) on face-api descriptors; null = no face. */
function scorePairs(pairs: readonly LabelledPair[], descriptors: ReadonlyMap<string, Float32Array | null>, mode: PeerLfw3d['mode']): PeerLfw3d {
  const score = (similarity: (a: Float32Array, b: Float32Array) => number, noFace: number): ReturnType<typeof verificationReport> =>
    verificationReport(
      pairs.map((p) => {
        const a = descriptors.get(p.a), b = descriptors.get(p.b);
        return { same: p.same, fold: p.fold, score: a && b ? similarity(a, b) : noFace };
      }),
    );
  // A pair with a faceless image is a non-match, scored below every real pair (eval.ts gives it
  // cosine -2). Euclidean distance has no fixed bound, so the floor is the largest one seen, plus 1.
  let largest = 0;
  for (const p of pairs) {
    const a = descriptors.get(p.a), b = descriptors.get(p.b);
    if (a && b) largest = Math.max(largest, euclidean(a, b));
  }
  const r = score((a, b) => -euclidean(a, b), -(largest + 1));
  const round = (v: number): number => Math.round(v * 10_000) / 10_000;
  return {
    mode,
    pairs: pairs.length,
    images: descriptors.size,
    score: 'negative euclidean distance',
    accuracy: round(r.accuracy),
    accuracyStd: round(r.accuracyStd),
    tarAtFar: { '0.001': round(r.tarAtFar['0.001']!), '0.01': round(r.tarAtFar['0.01']!) },
    auc: round(r.auc),
    accuracyCosine: round(score(cosineOf, -2).accuracy),
    failures: [...descriptors.values()].filter((d) => d === null).length,
  };
}

/** Markdown lines for bench/REPORT.md. */
export function peerReport(r: PeerResult): string[] {
  const l = r.lfw3d;
  return [
    `${r.name} ${r.version} (tfjs ${r.tfjs}), backend ${r.backend}, ${r.threads} threads as ${r.workers} workers; models ${r.models.detector} + ${r.models.landmarks} + ${r.models.recogniser}.`,
    '',
    `Demo photos: ${r.images} images, ${r.faces} faces, ${r.passes} passes after a warm-up: **${r.imagesPerSec} images/s** (${r.msPerImage.median} ms per image, ${r.msPerImage.min}..${r.msPerImage.max}); one image in one worker takes ${r.imageLatencyMs.median} ms (median; ${r.imageLatencyMs.min}..${r.imageLatencyMs.max}).`,
    '',
    `LFW3D, ${l.pairs} pairs (${l.images} images), 10 folds as ours, score = ${l.score}, ${r.lfw3dSeconds} s:`,
    '',
    '| face-api on LFW3D | accuracy | TAR@FAR 1e-3 | TAR@FAR 1e-2 | AUC | by cosine | images without a face |',
    '|---|---|---|---|---|---|---|',
    ...[l, r.lfw3dCrop].map(
      (x) => `| ${x.mode === 'detect' ? 'end to end (detect, as ours)' : 'descriptor of the whole crop (no detection)'} | ${x.accuracy} ± ${x.accuracyStd} | ${x.tarAtFar['0.001']} | ${x.tarAtFar['0.01']} | ${x.auc} | ${x.accuracyCosine} | ${x.failures} |`,
    ),
  ];
}

function euclidean(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s);
}

function cosineOf(a: Float32Array, b: Float32Array): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! ** 2;
    bb += b[i]! ** 2;
  }
  return ab / Math.sqrt(aa * bb || 1);
}

function packageVersion(name: string): string {
  return (require(`${name}/package.json`) as { version: string }).version;
}

/** `size` workers sharing one queue; results come back in job order. */
class Pool {
  private constructor(
    private readonly workers: Worker[],
    readonly backend: string,
  ) {}

  get size(): number {
    return this.workers.length;
  }

  static async start(size: number, init: WorkerInit): Promise<Pool> {
    // The worker re-runs this module. Node 20 does not carry the main thread's tsx loader into
    // workers, so the worker loads it through tsx's API (--conditions=source is inherited).
    const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => tsx.tsImport(${JSON.stringify(import.meta.url)}, ${JSON.stringify(import.meta.url)}))`;
    const workers = Array.from({ length: size }, () => new Worker(boot, { eval: true, workerData: init }));
    try {
      const first = await Promise.all(workers.map((w) => next(w)));
      const failed = first.find((m) => m.kind !== 'ready');
      if (failed) throw new Error(`face-api worker did not start: ${failed.kind === 'error' ? failed.message : failed.kind}`);
      return new Pool(workers, first[0]!.kind === 'ready' ? first[0]!.backend : '');
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw err;
    }
  }

  async run(jobs: Omit<Job, 'id'>[], progress?: (done: number) => void): Promise<Extract<Reply, { kind: 'done' }>[]> {
    const results = new Array<Extract<Reply, { kind: 'done' }>>(jobs.length);
    let taken = 0;
    let finished = 0;
    const drive = async (w: Worker): Promise<void> => {
      while (taken < jobs.length) {
        const id = taken++;
        w.postMessage({ ...jobs[id]!, id } satisfies Job);
        const reply = await next(w);
        if (reply.kind !== 'done') throw new Error(`face-api worker: ${reply.kind === 'error' ? reply.message : 'unexpected reply'}`);
        results[id] = reply;
        progress?.(++finished);
      }
    };
    await Promise.all(this.workers.map(drive));
    return results;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function next(w: Worker): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: Reply): void => {
      w.off('error', onError);
      resolve(m);
    };
    const onError = (err: Error): void => {
      w.off('message', onMessage);
      reject(err);
    };
    w.once('message', onMessage);
    w.once('error', onError);
  });
}

// ---- worker side: one face-api instance ----

/**
 * The part of face-api's API used here. It is loaded through require with this narrow type: its
 * bundled typings pull tfjs, @webgpu/types and an old @types/emscripten (which declares a global
 * `WebAssembly` namespace) into every program that type-checks bench/.
 */
interface FaceApi {
  version: string;
  /** face-api's own tfjs instance, tfjs-backend-wasm included (the node-wasm build re-exports both). */
  tf: {
    version_core: string;
    setWasmPaths(prefix: string): void;
    setBackend(name: string): Promise<boolean>;
    ready(): Promise<void>;
    getBackend(): string;
    env(): { getAsync(flag: string): Promise<unknown> };
    tensor3d(values: Uint8Array, shape: [number, number, number], dtype: 'int32'): { dispose(): void };
  };
  nets: Record<'ssdMobilenetv1' | 'tinyFaceDetector' | 'faceLandmark68Net' | 'faceRecognitionNet', { loadFromDisk(dir: string): Promise<void> }>;
  SsdMobilenetv1Options: new () => object;
  TinyFaceDetectorOptions: new () => object;
  computeFaceDescriptor(input: unknown): Promise<Float32Array | Float32Array[]>;
  detectAllFaces(
    input: unknown,
    options: object,
  ): { withFaceLandmarks(): { withFaceDescriptors(): Promise<{ detection: { box: { area: number } }; descriptor: Float32Array }[]> } };
}

async function serve(init: WorkerInit, port: NonNullable<typeof parentPort>): Promise<void> {
  // face-api's Node build for the WASM backend: it requires @tensorflow/tfjs and tfjs-backend-wasm
  // (bench's dependencies; face-api lists them only as devDependencies and finds them through
  // pnpm's default hoisting into node_modules/.pnpm/node_modules).
  const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApi;
  const tf = faceapi.tf;
  tf.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`); // the .wasm files ship in the package
  if (!(await tf.setBackend(init.backend))) throw new Error(`tfjs backend ${init.backend} failed to start`);
  await tf.ready();
  const simd = init.backend === 'wasm' && (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  const modelDir = join(dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
  const detector = init.detector === 'ssdMobilenetv1' ? faceapi.nets.ssdMobilenetv1 : faceapi.nets.tinyFaceDetector;
  await Promise.all([detector.loadFromDisk(modelDir), faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir), faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir)]);
  // Each detector with its documented defaults (ssd: minConfidence 0.5; tiny: inputSize 416, scoreThreshold 0.5).
  const options = init.detector === 'ssdMobilenetv1' ? new faceapi.SsdMobilenetv1Options() : new faceapi.TinyFaceDetectorOptions();
  port.postMessage({ kind: 'ready', backend: `${tf.getBackend()}${simd ? ' (SIMD)' : ''}, 1 thread per worker` } satisfies Reply);
  port.on('message', (job: Job) => {
    void describe(job).then(
      (reply) => port.postMessage(reply),
      (err: unknown) => port.postMessage({ kind: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies Reply),
    );
  });

  async function describe(job: Job): Promise<Reply> {
    const started = performance.now();
    let image;
    try {
      image = await decodeImage(job.file); // ours: upright 8-bit sRGB, the same pixels our pipeline sees
    } catch (err) {
      if (!(err instanceof FacefleetError)) throw err;
      return { kind: 'done', id: job.id, ms: performance.now() - started, faces: 0, descriptor: null, crop: null, failure: err.message };
    }
    const padded = padSmall(image);
    const input = tf.tensor3d(padded.data, [padded.height, padded.width, 3], 'int32');
    try {
      const found = await faceapi.detectAllFaces(input, options).withFaceLandmarks().withFaceDescriptors();
      // As ours (largestFace): the largest detection, not the most confident one.
      let largest: (typeof found)[number] | undefined;
      if (job.mode === 'largest') for (const f of found) if (!largest || f.detection.box.area > largest.detection.box.area) largest = f;
      const descriptor = largest?.descriptor ?? null;
      const ms = performance.now() - started;
      const crop = job.mode === 'largest' ? await cropDescriptor(image) : null;
      return { kind: 'done', id: job.id, ms, faces: found.length, descriptor, crop, ...(job.mode === 'largest' && descriptor === null ? { failure: 'noFace' } : {}) };
    } finally {
      input.dispose();
    }
  }

  async function cropDescriptor(image: RgbImage): Promise<Float32Array> {
    const whole = tf.tensor3d(image.data, [image.height, image.width, 3], 'int32');
    try {
      const d = await faceapi.computeFaceDescriptor(whole);
      return Array.isArray(d) ? d[0]! : d;
    } finally {
      whole.dispose();
    }
  }
}

/**
 * Ours pads images whose long side is under 320 px with a black border of a quarter of the long
 * side before detection (detect/runner.ts, minInputSidePx and smallImagePad): face-api gets the
 * same. Both face-api detectors resize to their own input size themselves.
 */
function padSmall(image: RgbImage): RgbImage {
  const long = Math.max(image.width, image.height);
  if (long >= 320) return image;
  const border = Math.round(long * 0.25);
  const width = image.width + 2 * border, height = image.height + 2 * border;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < image.height; y++) data.set(image.data.subarray(y * image.width * 3, (y + 1) * image.width * 3), ((y + border) * width + border) * 3);
  return { width, height, data };
}

const init = workerData as WorkerInit | undefined;
if (!isMainThread && parentPort && init?.role === ROLE) {
  const port = parentPort;
  serve(init, port).catch((err: unknown) => port.postMessage({ kind: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies Reply));
}
