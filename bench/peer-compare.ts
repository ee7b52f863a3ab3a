// Ours and the peer (@vladmandic/face-api) in one run (issue 6, item 3): throughput on the same
// demo photos with the same cores, LFW3D accuracy on the same pairs, and the ratios.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { LabelledPair } from '@facefleet/vision';
import { FAST_PROFILE_EMBEDDER } from './accuracy.js';
import { benchCore, parallelThroughput } from './core.js';
import type { Spread } from './machine.js';
import { benchPeer, lfw3dPairs, peerReport, type PeerBackend, type PeerDetector, type PeerResult } from './peer.js';

export interface PeerCompareOptions {
  /** One number for both: onnxruntime's intra-op threads for ours, face-api workers for the peer. */
  threads: number;
  quick: boolean;
  /** About this many LFW3D pairs (default: all; quick: 300). */
  lfwPairs?: number;
  backend?: PeerBackend;
  detector?: PeerDetector;
  skipOurs?: boolean;
  /** Throughput only (demo photos): no LFW3D on either side. */
  speedOnly?: boolean;
  log: (t: string) => void;
}

export interface OursSide {
  detector: string;
  embedder: string;
  threads: number;
  images: number;
  faces: number;
  passes: number;
  msPerImage: Spread;
  imagesPerSec: number;
  /** `threads` analyzers of one thread each on one queue (the peer's own split of the cores). */
  parallel?: { workers: number; threadsEach: number; embedder: string; imagesPerSec: number; msPerImage: Spread };
  /**
   * The same split with the fastest embedder the project ships (mobilefacenet-128d-a), whose LFW3D
   * accuracy the accuracy part reports: a second operating point, not the default.
   */
  fastProfile?: { workers: number; threadsEach: number; embedder: string; imagesPerSec: number; msPerImage: Spread; throughputRatio?: number };
  /** The better of the two splits: what the throughput ratio uses. */
  best?: { setup: string; imagesPerSec: number };
  lfw3d?: { accuracy: number; accuracyStd?: number; images: number; seconds: number } & Record<string, unknown>;
}

export interface PeerCompare {
  seconds: number;
  ours?: OursSide;
  peer: PeerResult;
  /** ours / face-api images per second on the same images and cores. */
  throughputRatio: number | null;
  lfw3dAccuracy: number;
  oursLfw3dAccuracy: number | null;
}

export async function benchPeerCompare(dataDir: string, opts: PeerCompareOptions): Promise<PeerCompare> {
  const started = performance.now();
  const lfwPairs = opts.lfwPairs ?? (opts.quick ? 300 : undefined);
  const passes = opts.quick ? 2 : 5;
  // Ours then the peer back to back on the demo photos (the VM is shared: adjacent runs see the
  // same load), then each on LFW3D.
  let ours: OursSide | undefined;
  if (opts.skipOurs !== true) {
    const core = await benchCore(dataDir, { passes, threads: opts.threads, log: opts.log });
    const ms = core.stagesMsPerImage.total!;
    ours = { detector: core.detector, embedder: core.embedder, threads: opts.threads, images: core.images, faces: core.faces, passes: core.passes, msPerImage: ms, imagesPerSec: round(1000 / ms.median, 2) };
    ours.parallel = await parallelThroughput(dataDir, { workers: opts.threads, passes, log: opts.log });
    ours.fastProfile = await parallelThroughput(dataDir, { workers: opts.threads, passes, embedder: FAST_PROFILE_EMBEDDER, log: opts.log });
    ours.best =
      ours.parallel.imagesPerSec > ours.imagesPerSec
        ? { setup: `${opts.threads} analyzers x 1 thread`, imagesPerSec: ours.parallel.imagesPerSec }
        : { setup: `1 analyzer x ${opts.threads} threads`, imagesPerSec: ours.imagesPerSec };
  }
  const peer = await benchPeer(dataDir, {
    threads: opts.threads,
    ...(lfwPairs !== undefined ? { lfwPairs } : {}),
    passes,
    ...(opts.backend !== undefined ? { backend: opts.backend } : {}),
    ...(opts.detector !== undefined ? { detector: opts.detector } : {}),
    ...(opts.speedOnly === true ? { speedOnly: true } : {}),
    log: opts.log,
  });
  if (ours?.fastProfile) ours.fastProfile.throughputRatio = round(ours.fastProfile.imagesPerSec / peer.imagesPerSec, 2);
  if (ours && opts.speedOnly !== true) ours.lfw3d = await oursLfw3d(lfw3dPairs(dataDir, lfwPairs), opts.threads, dataDir, opts.log);
  return {
    seconds: Math.round((performance.now() - started) / 1000),
    ...(ours ? { ours } : {}),
    peer,
    throughputRatio: ours ? round((ours.best?.imagesPerSec ?? ours.imagesPerSec) / peer.imagesPerSec, 2) : null,
    // face-api's better LFW3D figure: its detector misses most 90-px frontalised crops, so its
    // descriptor of the whole crop (no detection) is the fairer number for it.
    lfw3dAccuracy: peer.lfw3d === undefined ? Number.NaN : Math.max(peer.lfw3d.accuracy, peer.lfw3dCrop?.accuracy ?? 0),
    oursLfw3dAccuracy: ours?.lfw3d?.accuracy ?? null,
  };
}

/** Markdown for bench/REPORT.md. */
export function peerCompareReport(r: PeerCompare): string[] {
  const o = r.ours;
  return [
    '## Against a peer: @vladmandic/face-api in the same run',
    '',
    ...(o
      ? [
          `Ours: ${o.detector} + ${o.embedder} on the same ${o.images} demo photos (${o.faces} faces), ${o.passes} passes: one analyzer with ${o.threads} onnxruntime threads **${o.imagesPerSec} images/s** (${o.msPerImage.median} ms per image, ${o.msPerImage.min}..${o.msPerImage.max})` +
            (o.parallel ? `; ${o.parallel.workers} analyzers x 1 thread on one queue (face-api's own split of the cores) **${o.parallel.imagesPerSec} images/s** (${o.parallel.msPerImage.median} ms per image, ${o.parallel.msPerImage.min}..${o.parallel.msPerImage.max}).` : '.'),
          '',
          `**Throughput ratio (ours / face-api): ${r.throughputRatio}x** on the same images and cores (ours: ${o.best?.setup ?? `1 analyzer x ${o.threads} threads`}; face-api: ${r.peer.workers} workers x 1 thread).` +
            (o.fastProfile ? ` With the fastest shipped embedder (${o.fastProfile.embedder}, same split): **${o.fastProfile.imagesPerSec} images/s, ${o.fastProfile.throughputRatio}x** face-api (its LFW3D accuracy is in the accuracy table).` : '') +
            (r.peer.lfw3d ? ` LFW3D accuracy on the same ${r.peer.lfw3d.pairs} pairs: ours **${o.lfw3d?.accuracy ?? '-'}** (end to end), face-api **${r.lfw3dAccuracy}** (its better mode below: end to end ${r.peer.lfw3d.accuracy}, ${r.peer.lfw3d.failures} images without a face found; descriptor of the whole crop ${r.peer.lfw3dCrop?.accuracy ?? '-'}).` : ''),
          '',
        ]
      : []),
    ...peerReport(r.peer),
    '',
  ];
}

/**
 * Ours on the same pairs through the real CLI (`facefleet eval pairs --json`, the command behind
 * the README's accuracy table): a subset is written as its own pairs file, `10 n` per fold.
 */
async function oursLfw3d(pairs: LabelledPair[], threads: number, dataDir: string, log: (t: string) => void): Promise<NonNullable<OursSide['lfw3d']>> {
  const dir = mkdtempSync(join(tmpdir(), 'facefleet-peer-'));
  try {
    const perGroup = pairs.filter((p) => p.fold === 0 && p.same).length;
    const ref = (file: string): string[] => [basename(dirname(file)), String(Number(/_(\d+)\.\w+$/.exec(file)?.[1]))];
    const lines = pairs.map((p) => (p.same ? [...ref(p.a), ref(p.b)[1]!] : [...ref(p.a), ...ref(p.b)]).join('\t'));
    const pairsFile = join(dir, 'pairs.txt');
    writeFileSync(pairsFile, [`10\t${perGroup}`, ...lines].join('\n') + '\n');
    const cli = join(import.meta.dirname, '..', 'packages', 'cli', 'bin', 'facefleet.js');
    const args = [cli, 'eval', 'pairs', '--pairs', pairsFile, '--root', join(dataDir, 'lfw3d', 'images'), '--json', '--threads', String(threads)];
    const t0 = performance.now();
    const out = await new Promise<string>((ok, fail) => {
      const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      proc.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      proc.stderr.on('data', (b: Buffer) => log(`ours: ${b.toString().trimEnd()}`));
      proc.on('error', fail);
      proc.on('close', (code) => (code === 0 ? ok(stdout) : fail(new Error(`facefleet eval pairs exited ${code}`))));
    });
    const r = JSON.parse(out) as { accuracy: number } & Record<string, unknown>;
    return { ...r, images: new Set(pairs.flatMap((p) => [p.a, p.b])).size, seconds: round((performance.now() - t0) / 1000, 1) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function round(v: number, digits = 4): number {
  return Math.round(v * 10 ** digits) / 10 ** digits;
}
