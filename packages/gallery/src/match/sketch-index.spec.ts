import { ModelError } from '@facefleet/protocol';
import { describe, expect, it } from 'vitest';
import { FlatIndex } from './flat-index.js';
import { SketchIndex } from './sketch-index.js';

/** Seeded unit vectors (mulberry32 + Box-Muller) and planted matches at a chosen cosine. */
function vectors(seed: number) {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const unit = (dim: number, shift?: Float32Array): Float32Array => {
    const v = new Float32Array(dim);
    for (let j = 0; j < dim; j++) v[j] = Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()) + (shift?.[j] ?? 0);
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  };
  const planted = (q: Float32Array, s: number): Float32Array => {
    const u = unit(q.length);
    const along = u.reduce((a, x, j) => a + x * q[j]!, 0);
    const ortho = u.map((x, j) => x - along * q[j]!);
    const across = Math.sqrt(1 - s * s) / Math.hypot(...ortho);
    return q.map((x, j) => s * x + across * ortho[j]!);
  };
  return { unit, planted };
}

const ref = (i: number) => ({ templateId: `t${i}`, subjectId: `s${i >> 1}` });

/**
 * 20k random 512-d templates, 200 of them planted at cosines spread like LFW3D's genuine pairs
 * (0.10 to 0.75: at the low end a random template is closer, as in the bench).
 */
function plantedGallery(size: number, count: number, shift?: Float32Array) {
  const { unit, planted } = vectors(7);
  const queries = Array.from({ length: count }, () => unit(512, shift));
  const plantedAt = new Map(queries.map((_, q) => [q * Math.floor(size / count), q]));
  const exact = new FlatIndex('m', 512, size);
  const sketch = new SketchIndex('m', { dim: 512, capacity: size });
  for (let i = 0; i < size; i++) {
    const q = plantedAt.get(i);
    const v = q === undefined ? unit(512, shift) : planted(queries[q]!, 0.1 + (0.65 * q) / (count - 1));
    exact.add(ref(i), v);
    sketch.add(ref(i), v);
  }
  return { queries, exact, sketch };
}

describe('SketchIndex', () => {
  const { queries, exact, sketch } = plantedGallery(20_000, 200);

  it('finds exact search top-1 for planted matches across a genuine-like spread, scoring few templates exactly', () => {
    let agree = 0;
    let reranked = 0;
    for (const q of queries) {
      const [a] = sketch.search(q, 1);
      const [e] = exact.search(q, 1);
      reranked += sketch.lastReranked;
      if (a!.templateId === e!.templateId) agree++;
      expect(a!.similarity).toBeCloseTo(e!.similarity, 6);
    }
    expect(agree / queries.length).toBeGreaterThanOrEqual(0.99);
    expect(reranked / queries.length).toBeLessThan(0.02 * 20_000);
  });

  it('returns nearly all of exact search top 10, best first, with exact similarities', () => {
    let found = 0;
    for (const q of queries.slice(0, 50)) {
      const a = sketch.search(q, 10);
      const e = new Map(exact.search(q, 10).map((h) => [h.templateId, h.similarity]));
      for (const h of a) if (e.has(h.templateId)) expect(h.similarity).toBeCloseTo(e.get(h.templateId)!, 6);
      found += a.filter((h) => e.has(h.templateId)).length;
      expect(a.map((h) => h.similarity)).toEqual([...a.map((h) => h.similarity)].sort((x, y) => y - x));
    }
    // The tail of a top 10 is random templates within ~0.01 of each other, where a 2-deviation
    // margin misses a few percent; the top-1 test above is the one that counts.
    expect(found / 500).toBeGreaterThanOrEqual(0.95);
  });

  it('removes a subject from rows and sketches and keeps the moved templates findable', () => {
    const { unit } = vectors(11);
    const index = new SketchIndex('m');
    const added = Array.from({ length: 6000 }, (_, i) => {
      const v = unit(128);
      index.add(ref(i), v);
      return v;
    });
    expect(index.removeSubject('s10')).toBe(2);
    expect(index.size).toBe(5998);
    expect(index.search(added[20]!, 3).map((h) => h.subjectId)).not.toContain('s10');
    // Templates 5999 and 5998 were moved into the freed rows 21 and 20.
    for (const i of [5999, 5998, 0, 3000]) {
      const [hit] = index.search(added[i]!, 1);
      expect(hit).toMatchObject({ templateId: `t${i}` });
      expect(hit!.similarity).toBeCloseTo(1, 5);
    }
    expect(index.removeSubject('nobody')).toBe(0);
  });

  it('centres on a trained mean: same answers, far fewer templates scored exactly', () => {
    // Embeddings share a common direction: shift every vector before normalising.
    const shift = new Float32Array(512).map((_, j) => (j % 3 === 0 ? 2 : 0));
    const g = plantedGallery(8000, 100, shift);
    const run = () => {
      let agree = 0;
      let reranked = 0;
      for (const q of g.queries) {
        if (g.sketch.search(q, 1)[0]!.templateId === g.exact.search(q, 1)[0]!.templateId) agree++;
        reranked += g.sketch.lastReranked;
      }
      return { recall: agree / g.queries.length, reranked: reranked / g.queries.length };
    };
    const before = run();
    g.sketch.train(g.queries);
    const after = run();
    expect(after.recall).toBeGreaterThanOrEqual(0.99);
    expect(before.recall).toBeGreaterThanOrEqual(0.99);
    expect(after.reranked).toBeLessThan(before.reranked / 4);
  });

  it('searches small galleries exactly and handles k beyond the size', () => {
    const index = new SketchIndex('m');
    expect(index.search(new Float32Array(4), 3)).toEqual([]);
    index.add(ref(0), Float32Array.of(1, 0, 0, 0));
    index.add(ref(1), Float32Array.of(0, 1, 0, 0));
    const hits = index.search(Float32Array.of(0.6, 0.8, 0, 0), 5);
    expect(hits.map((h) => h.templateId)).toEqual(['t1', 't0']);
    expect(hits[0]!.similarity).toBeCloseTo(0.8, 6);
  });

  it('refuses vectors of another size with a model error', () => {
    const index = new SketchIndex('m', { dim: 128 });
    expect(() => index.add(ref(0), new Float32Array(512))).toThrow(ModelError);
    index.add(ref(0), new Float32Array(128).fill(0.1));
    expect(() => index.search(new Float32Array(512), 1)).toThrow(/size 512/);
    expect(() => new SketchIndex('m', { dim: 4096 })).toThrow(ModelError);
  });
});
