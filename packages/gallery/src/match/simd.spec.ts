import { describe, expect, it } from 'vitest';
import { FlatIndex } from './flat-index.js';
import { RowMatrix } from './row-matrix.js';
import { SimdArena } from './simd.js';

/** Deterministic values in [-1, 1). */
function values(seed: number, n: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

const dot64 = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, j) => s + x * b[j]!, 0);

describe('SIMD kernels', () => {
  it('score rows of any size like a float64 loop, padded rows included', () => {
    for (const dim of [3, 16, 100, 512]) {
      const rows = new RowMatrix(dim);
      const data = Array.from({ length: 37 }, (_, i) => values(i + 1, dim));
      for (const v of data) rows.push(v);
      const q = values(99, dim);
      const all = Float32Array.from(rows.scoreAll(q));
      data.forEach((v, i) => expect(all[i]).toBeCloseTo(dot64(v, q), 4));
      const at = rows.scoreAt(q, Int32Array.of(36, 0, 5, 5), 4);
      expect([...at]).toEqual([all[36], all[0], all[5], all[5]]);
    }
  });

  it('move and pop keep rows intact', () => {
    const rows = new RowMatrix(20);
    for (let i = 0; i < 3; i++) rows.push(values(i + 1, 20));
    rows.move(2, 0);
    rows.pop();
    expect(rows.size).toBe(2);
    expect([...rows.row(0)]).toEqual([...values(3, 20)]);
    expect([...rows.row(1)]).toEqual([...values(2, 20)]);
  });

  it('scan sums 4-bit table lookups for 16 templates a block, then scales and offsets', () => {
    const arena = new SimdArena();
    const blocks = 3;
    const codeBytes = 8;
    const blockBytes = 16 * codeBytes + 192;
    const lut = blocks * blockBytes;
    const out = lut + codeBytes * 32;
    arena.reserve(out + blocks * 64);
    const codes = arena.u8(0, blocks * blockBytes);
    const tables = arena.i8(lut, codeBytes * 32);
    values(5, codes.length).forEach((v, i) => (codes[i] = Math.floor((v + 1) * 128)));
    values(6, tables.length).forEach((v, i) => (tables[i] = Math.round(v * 15)));
    for (let b = 0; b < blocks; b++) {
      const meta = arena.f32(b * blockBytes + codeBytes * 16, 48);
      meta.set(values(7 + b, 48).map((v) => v + 2));
    }
    arena.kernels.scan(lut, 0, blocks, codeBytes, 0.5, 0.25, 3, out);
    const got = arena.f32(out, blocks * 16);
    for (let b = 0; b < blocks; b++) {
      const meta = arena.f32(b * blockBytes + codeBytes * 16, 48);
      for (let t = 0; t < 16; t++) {
        let sum = 0;
        for (let p = 0; p < codeBytes; p++) {
          const c = codes[b * blockBytes + p * 16 + t]!;
          sum += tables[p * 32 + (c & 15)]! + tables[p * 32 + 16 + (c >> 4)]!;
        }
        expect(got[b * 16 + t]).toBeCloseTo(0.5 * sum * meta[t]! + meta[16 + t]! + 0.25 * meta[32 + t]! + 3, 3);
      }
    }
  });

  it('select lists the indices at or above a threshold, in order', () => {
    const arena = new SimdArena();
    const v = arena.f32(0, 12);
    v.set([0.1, 0.5, -Infinity, 0.5, 0.2, 0.9, 0.49, 0, 0, 0, 0, 0.7]);
    const count = arena.kernels.select(0, 12, 0.5, 64);
    expect([...arena.i32(64, count)]).toEqual([1, 3, 5, 11]);
    expect(arena.kernels.select(0, 12, 2, 64)).toBe(0);
  });

  it('refuses to grow a memory past 4 GiB', () => {
    expect(() => new SimdArena().reserve(5 * 2 ** 30)).toThrow(RangeError);
  });
});

describe('FlatIndex on 512-d vectors', () => {
  it('ranks like a float64 loop', () => {
    const index = new FlatIndex('m', 512);
    const data = Array.from({ length: 3000 }, (_, i) => values(i + 1, 512));
    data.forEach((v, i) => index.add({ templateId: `t${i}`, subjectId: `s${i}` }, v));
    const q = values(12345, 512);
    const expected = data.map((v, i) => ({ i, s: dot64(v, q) })).sort((a, b) => b.s - a.s).slice(0, 10);
    const hits = index.search(q, 10);
    expect(hits.map((h) => h.templateId)).toEqual(expected.map((e) => `t${e.i}`));
    hits.forEach((h, r) => expect(h.similarity).toBeCloseTo(expected[r]!.s, 3));
  });
});
