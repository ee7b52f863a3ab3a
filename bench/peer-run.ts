// node --conditions=source --import tsx bench/peer-run.ts [--quick] [--threads N] [--backend wasm|cpu]
//   [--detector ssdMobilenetv1|tinyFaceDetector] [--lfw-pairs N] [--skip-ours]
// Ours and the peer (@vladmandic/face-api) in one process run: throughput on the same demo photos
// with the same cores, LFW3D accuracy on the same pairs. Prints JSON on stdout, progress on stderr.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { LabelledPair } from '@facefleet/vision';
import { benchCore } from './core.js';
import { machine } from './machine.js';
import { benchPeer, lfw3dPairs, type PeerBackend, type PeerDetector } from './peer.js';

const here = import.meta.dirname;
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    threads: { type: 'string' },
    backend: { type: 'string' },
    detector: { type: 'string' },
    'lfw-pairs': { type: 'string' },
    'skip-ours': { type: 'boolean' },
  },
  strict: true,
});
const dataDir = process.env.FACEFLEET_DATA_DIR ? resolve(process.env.FACEFLEET_DATA_DIR) : resolve(here, '..', '..', 'shared', 'data');
if (!existsSync(join(dataDir, 'lfw3d', 'pairs.txt'))) throw new Error(`peer bench needs the sample data: ${dataDir} has no lfw3d/ (set FACEFLEET_DATA_DIR)`);
const log = (t: string): void => void process.stderr.write(`${t}\n`);
const oneOf = <T extends string>(v: string | undefined, allowed: readonly T[], name: string): T | undefined => {
  if (v !== undefined && !allowed.includes(v as T)) throw new Error(`--${name} must be one of ${allowed.join(', ')}`);
  return v as T | undefined;
};

// One number for both: onnxruntime's intra-op threads for ours, face-api workers for the peer.
const threads = Number(values.threads ?? availableParallelism());
const lfwPairs = values['lfw-pairs'] !== undefined ? Number(values['lfw-pairs']) : values.quick ? 600 : undefined;
const started = performance.now();

// Ours then the peer back to back on the demo photos (the VM is shared: adjacent runs see the
// same load), then each on LFW3D.
let ours: Record<string, unknown> | undefined;
if (values['skip-ours'] !== true) {
  const core = await benchCore(dataDir, { passes: values.quick ? 2 : 5, threads, log });
  const ms = core.stagesMsPerImage.total!;
  ours = { detector: core.detector, embedder: core.embedder, threads, images: core.images, faces: core.faces, passes: core.passes, msPerImage: ms, imagesPerSec: round(1000 / ms.median, 2) };
}

const peer = await benchPeer(dataDir, {
  threads,
  ...(lfwPairs !== undefined ? { lfwPairs } : {}),
  passes: values.quick ? 2 : 5,
  ...(values.backend !== undefined ? { backend: oneOf<PeerBackend>(values.backend, ['wasm', 'cpu'], 'backend')! } : {}),
  ...(values.detector !== undefined ? { detector: oneOf<PeerDetector>(values.detector, ['ssdMobilenetv1', 'tinyFaceDetector'], 'detector')! } : {}),
  log,
});

if (ours) ours.lfw3d = await oursLfw3d(lfw3dPairs(dataDir, lfwPairs), threads);

const oursLfw = ours?.lfw3d as { accuracy: number } | undefined;
const result = {
  machine: machine(),
  date: new Date().toISOString(),
  command: `node --conditions=source --import tsx bench/peer-run.ts ${process.argv.slice(2).join(' ')}`.trim(),
  seconds: Math.round((performance.now() - started) / 1000),
  ours,
  peer,
  // The keys bench/results.json takes: throughput ours / face-api on the same images and cores.
  contract: {
    'peer.throughputRatio': ours ? round((ours.imagesPerSec as number) / peer.imagesPerSec, 2) : null,
    'peer.lfw3dAccuracy': peer.lfw3d.accuracy,
    'ours.lfw3dAccuracy': oursLfw?.accuracy ?? null,
  },
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);

function round(v: number, digits = 4): number {
  return Math.round(v * 10 ** digits) / 10 ** digits;
}

/**
 * Ours on the same pairs through the real CLI (`facefleet eval pairs --json`, the command behind
 * the README's accuracy table): a subset is written as its own pairs file, `10 n` per fold.
 */
async function oursLfw3d(pairs: LabelledPair[], threadCount: number): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'facefleet-peer-'));
  try {
    const perGroup = pairs.filter((p) => p.fold === 0 && p.same).length;
    const ref = (file: string): string[] => [basename(dirname(file)), String(Number(/_(\d+)\.\w+$/.exec(file)?.[1]))];
    const lines = pairs.map((p) => (p.same ? [...ref(p.a), ref(p.b)[1]!] : [...ref(p.a), ...ref(p.b)]).join('\t'));
    const pairsFile = join(dir, 'pairs.txt');
    writeFileSync(pairsFile, [`10\t${perGroup}`, ...lines].join('\n') + '\n');
    const cli = join(here, '..', 'packages', 'cli', 'bin', 'facefleet.js');
    const args = [cli, 'eval', 'pairs', '--pairs', pairsFile, '--root', join(dataDir, 'lfw3d', 'images'), '--json', '--threads', String(threadCount)];
    const t0 = performance.now();
    const out = await new Promise<string>((ok, fail) => {
      const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      proc.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      proc.stderr.on('data', (b: Buffer) => log(`ours: ${b.toString().trimEnd()}`));
      proc.on('error', fail);
      proc.on('close', (code) => (code === 0 ? ok(stdout) : fail(new Error(`facefleet eval pairs exited ${code}`))));
    });
    const r = JSON.parse(out) as Record<string, unknown>;
    return { ...r, images: new Set(pairs.flatMap((p) => [p.a, p.b])).size, seconds: round((performance.now() - t0) / 1000, 1) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
