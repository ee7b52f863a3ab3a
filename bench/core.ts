import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decide, FlatIndex } from '@facefleet/gallery';
import { FaceAnalyzer, findModel, modelsDir, openSession, ort, resizeRgb, StageTimes, type RgbImage } from '@facefleet/vision';
import { spread, type Spread } from './machine.js';

export interface CoreResult {
  images: number;
  faces: number;
  passes: number;
  detector: string;
  embedder: string;
  threads: number;
  /** Per image, per stage, ms (median over passes of the pass total / images). */
  stagesMsPerImage: Record<string, Spread>;
  pipelineMsPerFace: Spread;
  /** Issue 6's floor: isolated session.run, one detector call per image (at the pipeline's input shape) plus one embedder call per face. */
  floorMsPerFace: Spread;
  floorRatio: number;
  /** The session.run calls inside the pipeline (what it spends in the models), and the pipeline's ratio to them. */
  containedMsPerFace: Spread;
  containedRatio: number;
  floorRatioByStage: { detect: number; embed: number };
  /** Isolated session.run per image (detector) and per face (embedder), ms, median over passes. */
  isolated: { detectorMsPerImage: number; embedderMsPerFace: number };
}

/**
 * Per-stage latency of the recognition core on the demo photos, and its ratio to the raw model
 * floor (the session.run calls the pipeline makes: detector per image/tile, embedder per batch).
 */
export async function benchCore(dataDir: string, opts: { passes: number; threads: number; log: (t: string) => void }): Promise<CoreResult> {
  const files = ['group', 'expressions', 'misc'].flatMap((d) => readdirSync(join(dataDir, 'edge_demo', d)).map((f) => join(dataDir, 'edge_demo', d, f)));
  const times = new StageTimes();
  const fa = await FaceAnalyzer.open({ threads: opts.threads, times });
  const index = new FlatIndex(fa.embedderId);
  const rows: Record<string, number[]> = {};
  let faces = 0;
  const shapes: { width: number; height: number; faces: number; image: RgbImage }[] = [];
  try {
    for (let pass = -1; pass < opts.passes; pass++) {
      times.reset();
      faces = 0;
      const started = performance.now();
      for (const f of files) {
        const image = await fa.decode(f);
        const found = await fa.analyse(image);
        faces += found.length;
        if (pass === -1) shapes.push({ width: image.width, height: image.height, faces: found.length, image });
        await times.time('match', () => {
          for (const face of found) {
            decide(index.search(face.embedding.vector, 10), 0.3);
            if (pass === -1) index.add({ templateId: `${f}#${faces}`, subjectId: f }, face.embedding.vector);
          }
          return Promise.resolve();
        });
      }
      const total = performance.now() - started;
      if (pass < 0) continue; // warm-up: sessions, caches, JIT
      const add = (k: string, v: number): number => (rows[k] ??= []).push(v);
      add('total', total);
      for (const [stage, t] of times.totals) add(stage, t.ms);
      opts.log(`core: pass ${pass + 1}/${opts.passes}: ${files.length} images, ${faces} faces, ${(total / faces).toFixed(1)} ms per face`);
    }
  } finally {
    await fa.close();
  }
  const perImage = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, spread(v.map((x) => x / files.length))]));
  const contained = rows.total!.map((_, i) => (rows.detectorModel![i] ?? 0) + (rows.embedderModel![i] ?? 0));
  const ratio = (a: number[], b: number[]): number => Math.round((spread(a).median / spread(b).median) * 100) / 100;
  const iso = await isolatedFloor(fa.detectorId, fa.embedderId, shapes, opts);
  const floor = iso.detector.map((d, i) => d + iso.embedder[i]!);
  const facesTotal = shapes.reduce((n, x) => n + x.faces, 0);
  return {
    images: files.length,
    faces,
    passes: opts.passes,
    detector: fa.detectorId,
    embedder: fa.embedderId,
    threads: opts.threads,
    stagesMsPerImage: perImage,
    pipelineMsPerFace: spread(rows.total!.map((x) => x / faces)),
    floorMsPerFace: spread(floor.map((x) => x / faces)),
    floorRatio: ratio(rows.total!, floor),
    containedMsPerFace: spread(contained.map((x) => x / faces)),
    containedRatio: ratio(rows.total!, contained),
    floorRatioByStage: { detect: ratio(rows.detect!, iso.detector), embed: ratio(rows.embed!, iso.embedder) },
    isolated: { detectorMsPerImage: round2(spread(iso.detector).median / shapes.length), embedderMsPerFace: round2(spread(iso.embedder).median / Math.max(1, facesTotal)) },
  };
}

const round2 = (v: number): number => Math.round(v * 100) / 100;

/**
 * The floor as issue 6 defines it: the models alone in fresh sessions (same threads), one
 * detector call per image at the input shape the pipeline's whole-image pass uses (long side 640,
 * multiples of 32; images under 320 px padded by a quarter and upscaled to 320) on that image's
 * pixels, plus one batch-1 embedder call per face the pipeline found. Only session.run is timed;
 * per pass, the sums over all images.
 */
async function isolatedFloor(detectorId: string, embedderId: string, shapes: { width: number; height: number; faces: number; image: RgbImage }[], opts: { passes: number; threads: number }): Promise<{ detector: number[]; embedder: number[] }> {
  const threads = opts.threads > 0 ? { threads: opts.threads } : {};
  const det = await openSession(join(modelsDir(), findModel(detectorId).file), threads);
  const emb = await openSession(join(modelsDir(), findModel(embedderId).file), threads);
  try {
    const inputs: ort.Tensor[] = [];
    for (const s of shapes) {
      const long = Math.max(s.width, s.height);
      const [w, h] = long < 320 ? [s.width * 1.5 * (320 / (long * 1.5)), s.height * 1.5 * (320 / (long * 1.5))] : [s.width * Math.min(1, 640 / long), s.height * Math.min(1, 640 / long)];
      const rw = Math.max(1, Math.round(w)), rh = Math.max(1, Math.round(h));
      const netW = Math.max(32, Math.ceil(rw / 32) * 32), netH = Math.max(32, Math.ceil(rh / 32) * 32);
      const resized = await resizeRgb(s.image, rw, rh);
      const data = new Float32Array(3 * netW * netH);
      for (let y = 0; y < rh; y++) for (let x = 0; x < rw; x++) for (let c = 0; c < 3; c++) data[c * netW * netH + y * netW + x] = (resized.data[(y * rw + x) * 3 + c]! - 127.5) / 128;
      inputs.push(new ort.Tensor('float32', data, [1, 3, netH, netW]));
    }
    const side = findModel(embedderId).input.shape[2] ?? 112;
    const face = new ort.Tensor('float32', new Float32Array(3 * side * side).map((_, i) => Math.sin(i) * 0.5), [1, 3, side, side]);
    const detector: number[] = [];
    const embedder: number[] = [];
    for (let pass = -1; pass < opts.passes; pass++) {
      let d = 0, e = 0;
      for (let i = 0; i < shapes.length; i++) {
        let t = performance.now();
        await det.run({ [det.inputNames[0]!]: inputs[i]! });
        d += performance.now() - t;
        for (let f = 0; f < shapes[i]!.faces; f++) {
          t = performance.now();
          await emb.run({ [emb.inputNames[0]!]: face });
          e += performance.now() - t;
        }
      }
      if (pass < 0) continue;
      detector.push(d);
      embedder.push(e);
    }
    return { detector, embedder };
  } finally {
    await det.release();
    await emb.release();
  }
}

/**
 * Throughput with the cores split the way face-api's Node demo splits them: `workers` analyzers,
 * each with one onnxruntime thread, taking the demo photos from one queue concurrently (sharp and
 * onnxruntime run off the JS thread, so they overlap). Images per second, median over passes.
 */
export async function parallelThroughput(dataDir: string, opts: { workers: number; passes: number; embedder?: string; log: (t: string) => void }): Promise<{ workers: number; threadsEach: number; embedder: string; imagesPerSec: number; msPerImage: Spread }> {
  const files = ['group', 'expressions', 'misc'].flatMap((d) => readdirSync(join(dataDir, 'edge_demo', d)).map((f) => join(dataDir, 'edge_demo', d, f)));
  const analyzers = await Promise.all(Array.from({ length: opts.workers }, () => FaceAnalyzer.open({ threads: 1, ...(opts.embedder !== undefined ? { embedder: opts.embedder } : {}) })));
  const perImage: number[] = [];
  try {
    for (let pass = -1; pass < opts.passes; pass++) {
      let next = 0;
      const started = performance.now();
      await Promise.all(
        analyzers.map(async (fa) => {
          while (next < files.length) {
            const f = files[next++]!;
            await fa.analyse(await fa.decode(f));
          }
        }),
      );
      const ms = (performance.now() - started) / files.length;
      if (pass < 0) continue;
      perImage.push(ms);
      opts.log(`ours: ${analyzers[0]!.embedderId}, ${opts.workers} analyzers x 1 thread, pass ${pass + 1}/${opts.passes}: ${ms.toFixed(1)} ms per image`);
    }
  } finally {
    for (const fa of analyzers) await fa.close();
  }
  const msPerImage = spread(perImage);
  return { workers: opts.workers, threadsEach: 1, embedder: analyzers[0]!.embedderId, imagesPerSec: Math.round((1000 / msPerImage.median) * 100) / 100, msPerImage };
}

