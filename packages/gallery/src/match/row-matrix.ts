import { SimdArena } from './simd.js';

/**
 * Float32 rows of one dimension, row-major in one wasm memory so the SIMD kernels score a query
 * against all of them (or a list of them) at memory speed. Rows are padded to a multiple of 16
 * floats (zeros) for the kernels' 64-byte steps; 512-d and 128-d rows need no padding.
 * Layout: rows from byte 0; per-call scratch (query, row indices, scores) right after the last row.
 */
export class RowMatrix {
  readonly stride: number;
  private readonly arena: SimdArena;
  private rows = 0;

  constructor(
    readonly dim: number,
    capacity = 0,
  ) {
    this.stride = Math.ceil(dim / 16) * 16;
    this.arena = new SimdArena(capacity * this.rowBytes);
  }

  get size(): number {
    return this.rows;
  }

  private get rowBytes(): number {
    return this.stride * 4;
  }

  /** Bytes of wasm memory held (rows, scratch and growth headroom). */
  get reservedBytes(): number {
    return this.arena.byteLength;
  }

  push(vector: Float32Array): void {
    this.arena.reserve((this.rows + 1) * this.rowBytes);
    this.arena.f32(this.rows * this.rowBytes, this.dim).set(vector);
    this.rows++;
  }

  /** Overwrite row `to` with row `from` (padding included). */
  move(from: number, to: number): void {
    if (from === to) return;
    this.arena.u8(0, this.rows * this.rowBytes).copyWithin(to * this.rowBytes, from * this.rowBytes, (from + 1) * this.rowBytes);
  }

  pop(): void {
    this.rows--;
  }

  row(i: number): Float32Array {
    return this.arena.f32(i * this.rowBytes, this.dim);
  }

  /** Similarity of the query with every row; the view is valid until the next call. */
  scoreAll(query: Float32Array): Float32Array {
    const { q, out } = this.scratch(query, 0, this.rows);
    this.arena.kernels.dots(q, 0, this.stride, this.rows, out);
    return this.arena.f32(out, this.rows);
  }

  /** Similarity of the query with rows `indices[0..count)`; the view is valid until the next call. */
  scoreAt(query: Float32Array, indices: Int32Array, count: number): Float32Array {
    const { q, idx, out } = this.scratch(query, count, count);
    this.arena.i32(idx, count).set(indices.subarray(0, count));
    this.arena.kernels.dotsAt(q, 0, this.stride, idx, count, out);
    return this.arena.f32(out, count);
  }

  private scratch(query: Float32Array, indices: number, scores: number): { q: number; idx: number; out: number } {
    const q = this.rows * this.rowBytes;
    const idx = q + this.rowBytes;
    const out = idx + indices * 4;
    this.arena.reserve(out + scores * 4);
    const view = this.arena.f32(q, this.stride);
    view.set(query);
    view.fill(0, this.dim);
    return { q, idx, out };
  }
}
