import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metrics, Pipeline, type AgentConfig } from '@facefleet/agent';
import { GalleryStore } from '@facefleet/gallery';
import { FaceAnalyzer } from '@facefleet/vision';
import { spread, type Spread } from './machine.js';

export interface VideoResult {
  video: string;
  width: number;
  height: number;
  frames: number;
  faces: number;
  fps: number;
  stageMsMean: Record<string, number>;
}

/** Every frame of a video as JPEG bytes (ffmpeg, native size and rate). */
function frames(path: string): { jpegs: Buffer[]; width: number; height: number } {
  const run = spawnSync('ffmpeg', ['-v', 'error', '-i', path, '-an', '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '3', 'pipe:1'], { maxBuffer: 1 << 30 });
  if (run.status !== 0) throw new Error(`ffmpeg failed on ${path}: ${run.stderr.toString().split('\n')[0] ?? ''}`);
  const buf = run.stdout;
  const jpegs: Buffer[] = [];
  let start = buf.indexOf(Buffer.from([0xff, 0xd8]));
  while (start >= 0) {
    const end = buf.indexOf(Buffer.from([0xff, 0xd9]), start + 2);
    if (end < 0) break;
    jpegs.push(buf.subarray(start, end + 2));
    start = buf.indexOf(Buffer.from([0xff, 0xd8]), end + 2);
  }
  const w = buf.readUInt16BE(buf.indexOf(Buffer.from([0xff, 0xc0])) + 7);
  const h = buf.readUInt16BE(buf.indexOf(Buffer.from([0xff, 0xc0])) + 5);
  return { jpegs, width: w, height: h };
}

/**
 * Frames per second of the agent's real Pipeline (decode, detect, gates, tracker, embed, match,
 * outbox callback) on every frame of each demo video at its native size, fed as fast as it takes
 * them. Detection uses the defaults, so 1080p frames get the tiled small-face pass.
 */
export async function benchAgentVideos(dataDir: string, opts: { threads: number; maxFrames: number; log: (t: string) => void }): Promise<VideoResult[]> {
  const videos = ['Megamind.avi', 'short_hamilton_clip.mp4', 'facenet_pytorch_video.mp4'];
  const analyzer = await FaceAnalyzer.open({ threads: opts.threads });
  const gallery = GalleryStore.open(':memory:');
  const results: VideoResult[] = [];
  try {
    for (const v of videos) {
      const { jpegs, width, height } = frames(join(dataDir, 'edge_demo', 'video', v));
      const use = jpegs.slice(0, opts.maxFrames);
      const metrics = new Metrics();
      const config = {
        deviceId: 'bench',
        pipeline: { queueSize: 4 },
        tracker: { iou: 0.3, maxAgeMs: 1500, minHits: 3, bestFaces: 3 },
        recognition: { minFaceSizePx: 32, minQuality: 0.1, liveness: false, minLiveness: 0.5, unknownEvents: true, cooldownMs: 30_000, threads: opts.threads },
      } as unknown as AgentConfig;
      let events = 0;
      const pipeline = new Pipeline({ config, analyzer, gallery, metrics, threshold: 0.32, onEvent: () => void events++, log: { warn: () => undefined, debug: () => undefined } });
      pipeline.start();
      const started = performance.now();
      for (const [i, jpeg] of use.entries()) await pipeline.offer({ source: v, at: i * 40, bytes: jpeg, label: String(i) }, true, true);
      await pipeline.drained();
      const seconds = (performance.now() - started) / 1000;
      await pipeline.stop();
      const text = metrics.render();
      const stageMsMean: Record<string, number> = {};
      for (const stage of ['decode', 'detect', 'embed', 'match']) {
        const sum = Number(/facefleet_stage_latency_ms_sum\{stage="(\w+)"\} ([\d.]+)/g.exec(text.split('\n').find((l) => l.includes(`_sum{stage="${stage}"}`)) ?? '')?.[2] ?? 0);
        const count = Number(text.split('\n').find((l) => l.includes(`_count{stage="${stage}"}`))?.split(' ').pop() ?? 0);
        stageMsMean[stage] = count > 0 ? Math.round((sum / count) * 100) / 100 : 0;
      }
      const faces = metrics.get('facefleet_faces_total');
      const r = { video: v, width, height, frames: use.length, faces, fps: Math.round((use.length / seconds) * 10) / 10, stageMsMean };
      opts.log(`agent: ${v} ${width}x${height}: ${r.frames} frames at ${r.fps} frames/s (${events} events with unknown events on)`);
      results.push(r);
    }
  } finally {
    await analyzer.close();
    gallery.close();
  }
  return results;
}

export interface RssResult {
  minutes: number;
  samples: { tMin: number; rssMb: number }[];
  warmupMin: number;
  growthMbPerMin: number;
  rssMb: Spread;
}

/**
 * RSS of the agent daemon (a real process) looping a demo video through a stream source, sampled
 * every 10 s; growth is the least-squares slope after the warm-up.
 */
export async function benchAgentRss(dataDir: string, cliBin: string, opts: { minutes: number; log: (t: string) => void }): Promise<RssResult> {
  const dir = mkdtempSync(join(tmpdir(), 'facefleet-rss-'));
  const config = join(dir, 'agent.yaml');
  writeFileSync(config, `deviceId: rss\ndataDir: ${dir}/data\nsources:\n  - {type: stream, url: ${join(dataDir, 'edge_demo', 'video', 'Megamind.avi')}, loop: true, fps: 10}\nrecognition: {unknownEvents: true, cooldownMs: 1000}\nlogLevel: warn\n`);
  const proc = spawn(process.execPath, [cliBin, 'agent', '--config', config], { stdio: 'ignore' });
  const samples: { tMin: number; rssMb: number }[] = [];
  const started = Date.now();
  try {
    while (Date.now() - started < opts.minutes * 60_000) {
      await new Promise((r) => setTimeout(r, 10_000));
      const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      samples.push({ tMin: (Date.now() - started) / 60_000, rssMb: Math.round((kb / 1024) * 10) / 10 });
      if (samples.length % 6 === 0) opts.log(`agent rss: ${samples.at(-1)!.tMin.toFixed(1)} min, ${samples.at(-1)!.rssMb} MB`);
    }
  } finally {
    proc.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  const warmupMin = Math.min(2, opts.minutes / 3);
  const after = samples.filter((s) => s.tMin >= warmupMin);
  const mx = after.reduce((a, s) => a + s.tMin, 0) / after.length;
  const my = after.reduce((a, s) => a + s.rssMb, 0) / after.length;
  const slope = after.reduce((a, s) => a + (s.tMin - mx) * (s.rssMb - my), 0) / Math.max(1e-9, after.reduce((a, s) => a + (s.tMin - mx) ** 2, 0));
  return { minutes: opts.minutes, samples, warmupMin, growthMbPerMin: Math.round(slope * 1000) / 1000, rssMb: spread(samples.map((s) => s.rssMb)) };
}
