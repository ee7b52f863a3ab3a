import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decide, FlatIndex } from '@facefleet/gallery';
import { FaceAnalyzer, StageTimes } from '@facefleet/vision';
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
  floorMsPerFace: Spread;
  floorRatio: number;
  floorRatioByStage: { detect: number; embed: number };
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
  try {
    for (let pass = -1; pass < opts.passes; pass++) {
      times.reset();
      faces = 0;
      const started = performance.now();
      for (const f of files) {
        const image = await fa.decode(f);
        const found = await fa.analyse(image);
        faces += found.length;
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
  const floor = rows.total!.map((_, i) => (rows.detectorModel![i] ?? 0) + (rows.embedderModel![i] ?? 0));
  const ratio = (a: number[], b: number[]): number => Math.round((spread(a).median / spread(b).median) * 100) / 100;
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
    floorRatioByStage: { detect: ratio(rows.detect!, rows.detectorModel!), embed: ratio(rows.embed!, rows.embedderModel!) },
  };
}
