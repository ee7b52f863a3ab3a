// Ours and the peer (@vladmandic/face-api) in one run (issue 6, item 3): throughput on the same
// demo photos with the same cores, LFW3D accuracy on the same pairs, and the ratios.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { LabelledPair } from '@facefleet/vision';
import { benchCore } from './core.js';
import type { Spread } from './machine.js';
import { benchPeer, lfw3dPairs, peerReport, type PeerBackend, type PeerDetector, type PeerResult } from './peer.js';

export interface PeerCompareOptions {
  /** One number for both: onnxruntime's intra-op threads for ours, face-api workers for the peer. */
  threads: number;
  quick: boolean;
  /** About this many LFW3D pairs (default: all; quick: 600). */
  lfwPairs?: number;
  backend?: PeerBackend;
  detector?: PeerDetector;
  skipOurs?: boolean;
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
  const lfwPairs = opts.lfwPairs ?? (opts.quick ? 600 : undefined);
  const passes = opts.quick ? 2 : 5;
  // Ours then the peer back to back on the demo photos (the VM is shared: adjacent runs see the
  // same load), then each on LFW3D.
  let ours: OursSide | undefined;
  if (opts.skipOurs !== true) {
    const core = await benchCore(dataDir, { passes, threads: opts.threads, log: opts.log });
    const ms = core.stagesMsPerImage.total!;
    ours = { detector: core.detector, embedder: core.embedder, threads: opts.threads, images: core.images, faces: core.faces, passes: core.passes, msPerImage: ms, imagesPerSec: round(1000 / ms.median, 2) };
  }
  const peer = await benchPeer(dataDir, {
    threads: opts.threads,
    ...(lfwPairs !== undefined ? { lfwPairs } : {}),
    passes,
    ...(opts.backend !== undefined ? { backend: opts.backend } : {}),
    ...(opts.detector !== undefined ? { detector: opts.detector } : {}),
    log: opts.log,
  });
  if (ours) ours.lfw3d = await oursLfw3d(lfw3dPairs(dataDir, lfwPairs), opts.threads, dataDir, opts.log);
  return {
    seconds: Math.round((performance.now() - started) / 1000),
    ...(ours ? { ours } : {}),
    peer,
    throughputRatio: ours ? round(ours.imagesPerSec / peer.imagesPerSec, 2) : null,
    lfw3dAccuracy: peer.lfw3d.accuracy,
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
          `Ours: ${o.detector} + ${o.embedder}, ${o.threads} onnxruntime threads, the same ${o.images} demo photos (${o.faces} faces), ${o.passes} passes: **${o.imagesPerSec} images/s** (${o.msPerImage.median} ms per image, ${o.msPerImage.min}..${o.msPerImage.max}).`,
          '',
          `**Throughput ratio (ours / face-api): ${r.throughputRatio}x** on the same images and cores. LFW3D accuracy on the same ${r.peer.lfw3d.pairs} pairs: ours **${o.lfw3d?.accuracy ?? '-'}**, face-api **${r.lfw3dAccuracy}** (end to end, its own detector and distance).`,
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
