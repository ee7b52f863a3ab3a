import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { data, hasData } from '../../../test/helpers.js';
import { FaceAnalyzer } from './analyzer.js';
import { cosine } from './embed/embedder.js';
import { withOrientation } from '../../../test/orientation.js';

describe('FaceAnalyzer.open', () => {
  it('fails with a clear message naming the missing model file and the fetch command', async () => {
    const err = (await FaceAnalyzer.open({ modelsDir: '/nonexistent/models' }).catch((e: Error) => e)) as Error & { code: string };
    expect(err.code).toBe('model');
    expect(err.message).toMatch(/model \S+ is missing: \/nonexistent\/models\/\S+\.onnx \(run: pnpm exec facefleet models fetch\)/);
  });

  it('refuses an unknown model id and a model of the wrong kind', async () => {
    await expect(FaceAnalyzer.open({ detector: 'no-such-model' })).rejects.toThrow(/unknown model "no-such-model" \(known: /);
    await expect(FaceAnalyzer.open({ detector: 'w600k-mbf-int8' })).rejects.toThrow(/is of kind embedder, not a detector/);
  });
});

// Real models (fetched by the set-up step) on real photos.
describe.runIf(hasData('edge_demo') && hasData('faceapi_bbt'))('FaceAnalyzer on real photos', () => {
  let fa: FaceAnalyzer;
  beforeAll(async () => {
    fa = await FaceAnalyzer.open({ threads: 1 });
  });
  afterAll(() => fa.close());

  const embedFile = async (path: string): Promise<Float32Array> => {
    const faces = await fa.analyse(await fa.decode(path));
    expect(faces.length, path).toBeGreaterThan(0);
    return faces[0]!.embedding.vector;
  };

  it('finds the four people in bbt1.jpg with five ordered landmarks inside each box', async () => {
    const image = await fa.decode(data('edge_demo', 'group', 'bbt1.jpg'));
    const faces = await fa.detect(image);
    expect(faces).toHaveLength(4);
    for (const f of faces) {
      expect(f.landmarks).toHaveLength(5);
      const [le, re, nose, lm, rm] = f.landmarks as [number, number][];
      expect(le![0]).toBeLessThan(re![0]); // left eye is image-left
      expect(lm![0]).toBeLessThan(rm![0]);
      expect(nose![1]).toBeGreaterThan(le![1]);
      expect(lm![1]).toBeGreaterThan(nose![1]);
      for (const [x, y] of f.landmarks) {
        expect(x).toBeGreaterThanOrEqual(f.box.x - 2);
        expect(x).toBeLessThanOrEqual(f.box.x + f.box.width + 2);
        expect(y).toBeGreaterThanOrEqual(f.box.y - 2);
      }
      expect(f.quality.score).toBeGreaterThan(0.3);
    }
  });

  it('scores liveness as a probability, the same on the same input', async () => {
    const live = await FaceAnalyzer.open({ threads: 1, liveness: true });
    try {
      const image = await live.decode(data('edge_demo', 'expressions', 'happy.jpg'));
      const [face] = await live.detect(image);
      const p = await live.liveness(image, face!);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThanOrEqual(1);
      expect(await live.liveness(image, face!)).toBe(p);
    } finally {
      await live.close();
    }
    await expect(fa.liveness(await fa.decode(data('edge_demo', 'expressions', 'happy.jpg')), { box: { x: 0, y: 0, width: 10, height: 10 }, score: 1, landmarks: [] })).rejects.toThrow(/liveness models are not loaded/);
  });

  it('finds no face in the photos without people', async () => {
    const dir = data('edge_demo', 'negatives');
    const found: string[] = [];
    for (const f of readdirSync(dir)) {
      const faces = await fa.detect(await fa.decode(join(dir, f)));
      if (faces.length > 0) found.push(`${f}:${faces.length}`);
    }
    expect(found).toEqual([]);
  });

  it('scores the same person high and different people low', async () => {
    const id = (p: string, n: number): string => data('faceapi_bbt', 'identities', p, `${p}${n}.png`);
    const [a1, a2, r1] = await Promise.all([embedFile(id('amy', 1)), embedFile(id('amy', 2)), embedFile(id('raj', 1))]);
    expect(cosine(a1, a2)).toBeGreaterThan(0.45);
    expect(cosine(a1, r1)).toBeLessThan(0.2);
    expect(Math.hypot(...a1)).toBeCloseTo(1, 5);
  });

  it('finds a small face in a large image (tiled pass)', async () => {
    // messi5.jpg's face (~30 px) pasted into a 3000x2000 canvas: 0.2x at the 640 input would lose it.
    const face = readFileSync(data('edge_demo', 'misc', 'messi5.jpg'));
    const canvas = await sharp({ create: { width: 3000, height: 2000, channels: 3, background: '#7a7a7a' } })
      .composite([{ input: face, left: 1700, top: 1200 }])
      .jpeg()
      .toBuffer();
    const tiled = await FaceAnalyzer.open({ threads: 1, detect: { tile: true } });
    const image = await fa.decode(canvas);
    // Without the tiled pass (the default) the face is lost; with it, found where it was pasted.
    expect(await fa.detect(image)).toHaveLength(0);
    const faces = await tiled.detect(image).finally(() => tiled.close());
    expect(faces.length).toBeGreaterThanOrEqual(1);
    expect(faces[0]!.box.x).toBeGreaterThan(1700);
    expect(faces[0]!.box.y).toBeGreaterThan(1200);
  });

  it('gives the same faces, in upright coordinates, for every EXIF orientation', async () => {
    const upright = readFileSync(data('edge_demo', 'group', 'bbt4.jpg'));
    const ref = await fa.analyse(await fa.decode(upright));
    for (let n = 1; n <= 8; n++) {
      const faces = await fa.analyse(await fa.decode(await withOrientation(upright, n)));
      expect([n, faces.length]).toEqual([n, ref.length]);
      for (const r of ref) {
        const m = faces.find((f) => Math.abs(f.box.x - r.box.x) < 6 && Math.abs(f.box.y - r.box.y) < 6);
        expect(m, `orientation ${n}: face at ${r.box.x},${r.box.y}`).toBeDefined();
        expect(cosine(m!.embedding.vector, r.embedding.vector)).toBeGreaterThan(0.9);
      }
    }
  });
});
