import { describe, expect, it } from 'vitest';
import { assignUnique, decide } from './decide.js';
import { FlatIndex, topK } from './flat-index.js';

const unit = (...v: number[]): Float32Array => {
  const n = Math.hypot(...v);
  return Float32Array.from(v.map((x) => x / n));
};

describe('FlatIndex', () => {
  it('returns the nearest templates by cosine, best first', () => {
    const index = new FlatIndex('m');
    index.add({ templateId: 't1', subjectId: 'a' }, unit(1, 0, 0));
    index.add({ templateId: 't2', subjectId: 'b' }, unit(0, 1, 0));
    index.add({ templateId: 't3', subjectId: 'b' }, unit(1, 1, 0));
    const hits = index.search(unit(1, 0.1, 0), 2);
    expect(hits.map((h) => h.templateId)).toEqual(['t1', 't3']);
    expect(hits[0]!.similarity).toBeCloseTo(1 / Math.hypot(1, 0.1), 6);
  });

  it('removes a subject and keeps the rest searchable', () => {
    const index = new FlatIndex('m');
    index.add({ templateId: 't1', subjectId: 'a' }, unit(1, 0));
    index.add({ templateId: 't2', subjectId: 'b' }, unit(0, 1));
    index.add({ templateId: 't3', subjectId: 'a' }, unit(1, 1));
    expect(index.removeSubject('a')).toBe(2);
    expect(index.size).toBe(1);
    expect(index.search(unit(1, 0), 5).map((h) => h.subjectId)).toEqual(['b']);
  });

  it('refuses vectors of another size', () => {
    const index = new FlatIndex('m');
    index.add({ templateId: 't1', subjectId: 'a' }, unit(1, 0));
    expect(() => index.search(unit(1, 0, 0), 1)).toThrow(/size 3/);
  });

  it('grows past its initial capacity', () => {
    const index = new FlatIndex('m', 0, 2);
    for (let i = 0; i < 100; i++) index.add({ templateId: `t${i}`, subjectId: `s${i}` }, unit(Math.cos(i), Math.sin(i)));
    expect(index.size).toBe(100);
    expect(index.search(unit(Math.cos(42), Math.sin(42)), 1)[0]!.templateId).toBe('t42');
  });

  it('selects the top k of many scores', () => {
    const scores = Float32Array.from([0.1, 0.9, 0.3, 0.8, 0.5]);
    expect(topK(scores, 3)).toEqual([1, 3, 4]);
    expect(topK(scores, 10)).toEqual([1, 3, 4, 2, 0]);
  });
});

describe('open-set decision', () => {
  it('names the best subject only at or above the threshold', () => {
    const hits = [
      { templateId: '1', subjectId: 'a', similarity: 0.45 },
      { templateId: '2', subjectId: 'a', similarity: 0.3 },
      { templateId: '3', subjectId: 'b', similarity: 0.2 },
    ];
    const match = decide(hits, 0.4);
    expect(match).toMatchObject({ kind: 'match', subjectId: 'a', similarity: 0.45 });
    expect(match.candidates).toEqual([{ subjectId: 'a', similarity: 0.45 }, { subjectId: 'b', similarity: 0.2 }]);
    expect(decide(hits, 0.5)).toMatchObject({ kind: 'unknown', similarity: 0.45 });
    expect(decide([], 0.5)).toMatchObject({ kind: 'unknown', candidates: [] });
  });

  it('never gives two faces of one frame the same subject', () => {
    const d1 = decide([{ templateId: '1', subjectId: 'a', similarity: 0.6 }, { templateId: '2', subjectId: 'b', similarity: 0.5 }], 0.4);
    const d2 = decide([{ templateId: '1', subjectId: 'a', similarity: 0.7 }], 0.4);
    const [f1, f2] = assignUnique([d1, d2], 0.4);
    expect(f2).toMatchObject({ kind: 'match', subjectId: 'a' });
    expect(f1).toMatchObject({ kind: 'match', subjectId: 'b', similarity: 0.5 });
    const [g1] = assignUnique([decide([{ templateId: '1', subjectId: 'a', similarity: 0.6 }], 0.4), d2], 0.4);
    expect(g1!.kind).toBe('unknown');
  });
});
