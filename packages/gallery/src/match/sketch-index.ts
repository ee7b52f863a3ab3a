import { ModelError } from '@facefleet/protocol';
import { topK, type TemplateHit, type TemplateRef } from './flat-index.js';
import { RandomRotation } from './rotation.js';
import { RowMatrix } from './row-matrix.js';
import { SimdArena } from './simd.js';

export interface SketchIndexOptions {
  /** Vector size; 0 (default) takes the size of the first vector added. At most 2048. */
  dim?: number;
  /** Templates to reserve memory for up front. */
  capacity?: number;
  /**
   * Re-rank margin in standard deviations of a sketch estimate's error (default 2): a template
   * is scored exactly unless its estimate is this many deviations below the k-th best exact
   * similarity found. Larger is slower and misses less.
   */
  epsilon?: number;
  /**
   * About how many templates a query may score exactly (default 4096, at least 16 k): the
   * search stops there even where the bound would go on. Bounds the worst query (rows scattered
   * over gigabytes cost ~0.6 us each at 1M x 512) at a small cost in recall; Infinity for none.
   */
  budget?: number;
  /** Seed of the random rotation (default fixed, so sketches are reproducible). */
  seed?: number;
}

/** Templates per fast-scan block: one i8x16 lane each. */
const LANES = 16;
/** Per template in a block: code bytes, then scale, offset and noise (f32 each). */
const META_BYTES = 12;
/** Up to this size every template is scored exactly (cheaper than the sketch's bookkeeping). */
const EXACT_UP_TO = 4096;
/** Bounds sampled for the re-rank thresholds: one in 256. */
const SAMPLE_STRIDE = 256;

/**
 * Approximate cosine search for large galleries (issue 6, item 4): a 1-bit sketch of every
 * template is scanned in full, then the few templates the sketch cannot rule out are scored
 * exactly in float32, so returned similarities are exact.
 *
 * Sketches are RaBitQ's (Gao & Long, SIGMOD 2024): centre, rotate randomly (rotation.ts), keep
 * the sign of each coordinate (64 bytes for 512-d) and a per-template scale and offset that make
 * the estimate of <x, q> unbiased, with an error whose standard deviation is known per template
 * (about 0.033 for 512-d unit vectors). The scan looks the full-precision rotated query up in
 * 4-bit tables, 16 templates per SIMD instruction (simd.ts `scan`), and yields an upper bound
 * `estimate + epsilon * deviation` per template. Templates are then scored exactly in rounds of
 * falling bound until the bound drops below the k-th best exact similarity found.
 *
 * There is no coarse partition (IVF): templates of different people are close to uniform on the
 * sphere, where a partition must be probed widely to find a neighbour at cosine 0.2-0.3, which
 * LFW3D's genuine pairs often are. The float32 rows stay in memory for the exact scores; the
 * sketch adds 76 bytes a template (512-d).
 */
export class SketchIndex {
  private dimension: number;
  private rows: RowMatrix | undefined;
  private rotation: RandomRotation | undefined;
  private readonly codes = new SimdArena();
  private refs: TemplateRef[] = [];
  private centre: Float32Array | undefined;
  private readonly epsilon: number;
  private readonly budget: number;
  private readonly capacity: number;
  private readonly seed: number;
  private work = new Float64Array(0);
  private centred = new Float32Array(0);
  private sample = new Float32Array(0);
  /** Largest sketch scale seen: bounds the lookup tables' rounding error. */
  private scaleMax = 0;
  private reranked = 0;

  constructor(
    readonly modelId: string,
    options: SketchIndexOptions = {},
  ) {
    this.dimension = options.dim ?? 0;
    this.epsilon = options.epsilon ?? 2;
    this.budget = options.budget ?? 4096;
    this.capacity = options.capacity ?? 0;
    this.seed = options.seed ?? 0x5eed;
    if (this.dimension > 0) this.init(this.dimension);
  }

  get dim(): number {
    return this.dimension;
  }

  get size(): number {
    return this.refs.length;
  }

  /** Templates scored exactly by the last search. */
  get lastReranked(): number {
    return this.reranked;
  }

  /** Bytes of vector memory held: float32 rows, sketches, scratch and growth headroom. */
  get reservedBytes(): number {
    return (this.rows?.reservedBytes ?? 0) + this.codes.byteLength;
  }

  /** Bytes a template's sketch takes beyond its float32 row. */
  get sketchBytes(): number {
    return this.codeBytes + META_BYTES;
  }

  private get paddedDim(): number {
    return this.rotation?.paddedDim ?? 0;
  }

  private get codeBytes(): number {
    return this.paddedDim / 8;
  }

  private get blockBytes(): number {
    return LANES * this.sketchBytes;
  }

  private get blocks(): number {
    return Math.ceil(this.refs.length / LANES);
  }

  private init(dim: number): void {
    this.dimension = dim;
    // At least 32 coordinates: the scan sums four code bytes at a time.
    this.rotation = new RandomRotation(Math.max(32, dim), this.seed);
    if (this.paddedDim > 2048) throw new ModelError(`a sketch index takes vectors of at most 2048 values, not ${dim}`);
    this.rows = new RowMatrix(dim, this.capacity);
    this.codes.reserve(Math.ceil(this.capacity / LANES) * this.blockBytes);
    this.work = new Float64Array(this.paddedDim);
    this.centred = new Float32Array(dim);
  }

  /**
   * Centre the sketches on the mean of a sample of this model's templates (optional; re-encodes
   * what is held). Embeddings share a common direction; signs of centred vectors tell more apart.
   */
  train(sample: readonly Float32Array[]): void {
    if (sample.length === 0) return;
    if (this.dimension === 0) this.init(sample[0]!.length);
    const mean = new Float32Array(this.dimension);
    for (const v of sample) {
      this.check(v, 'sample');
      for (let j = 0; j < mean.length; j++) mean[j]! += v[j]! / sample.length;
    }
    this.centre = mean;
    this.scaleMax = 0;
    for (let i = 0; i < this.refs.length; i++) this.encode(i, this.rows!.row(i));
  }

  add(ref: TemplateRef, vector: Float32Array): void {
    if (this.dimension === 0) this.init(vector.length);
    this.check(vector, 'template');
    const i = this.refs.length;
    this.rows!.push(vector);
    this.refs.push(ref);
    this.codes.reserve(Math.ceil((i + 1) / LANES) * this.blockBytes);
    this.encode(i, vector);
  }

  /** Remove every template of a subject (swap-with-last keeps rows and blocks dense). */
  removeSubject(subjectId: string): number {
    let removed = 0;
    for (let i = this.refs.length - 1; i >= 0; i--) {
      if (this.refs[i]!.subjectId !== subjectId) continue;
      const last = this.refs.length - 1;
      this.rows!.move(last, i);
      this.moveSketch(last, i);
      this.refs[i] = this.refs[last]!;
      this.refs.pop();
      this.rows!.pop();
      removed++;
    }
    return removed;
  }

  /** The k most similar templates, best first, with exact similarities. */
  search(query: Float32Array, k: number): TemplateHit[] {
    const n = this.refs.length;
    this.reranked = 0;
    if (n === 0 || k <= 0) return [];
    this.check(query, 'query');
    k = Math.min(k, n);
    const rows = this.rows!;
    if (n <= EXACT_UP_TO) {
      this.reranked = n;
      const scores = rows.scoreAll(query);
      return topK(scores, k).map((i) => ({ ...this.refs[i]!, similarity: scores[i]! }));
    }
    const bounds = this.bounds(query);
    let best: { index: number; similarity: number }[] = [];
    let floor = -Infinity;
    let above = Infinity;
    // Rounds at falling thresholds: the ~256 highest bounds first (their best similarity usually
    // rules out all but a few more), then down to the budget; past it only to fill k.
    const rounds = this.thresholds(bounds.values, Math.max(4 * k, 256), Math.max(this.budget, 16 * k));
    for (let r = 0; ; r++) {
      if (r >= rounds.length && best.length === k) break;
      // Never -Infinity: that would select the empty lanes of the last block.
      const threshold = Math.max(rounds[r] ?? -Infinity, floor, -Number.MAX_VALUE);
      if (threshold < above) {
        const fresh = this.select(bounds, threshold).filter((i) => bounds.values[i]! < above);
        best = merge(best, fresh, rows.scoreAt(query, fresh, fresh.length), k);
        this.reranked += fresh.length;
        above = threshold;
      }
      if (best.length === k) floor = best[k - 1]!.similarity;
      if (threshold <= floor) break;
    }
    return best.map((h) => ({ ...this.refs[h.index]!, similarity: h.similarity }));
  }

  private check(vector: Float32Array, what: string): void {
    if (vector.length !== this.dimension) {
      throw new ModelError(`${what} of size ${vector.length} cannot use an index of size ${this.dimension}`, { mismatch: true });
    }
  }

  /** Rotated, centred copy of a vector (in a buffer reused by the next call). */
  private rotate(vector: Float32Array): Float64Array {
    const centre = this.centre;
    if (!centre) return this.rotation!.apply(vector, this.work);
    for (let j = 0; j < vector.length; j++) this.centred[j] = vector[j]! - centre[j]!;
    return this.rotation!.apply(this.centred, this.work);
  }

  private meta(i: number): Float32Array {
    return this.codes.f32((i >> 4) * this.blockBytes + this.codeBytes * LANES, 3 * LANES);
  }

  private encode(i: number, vector: Float32Array): void {
    const y = this.rotate(vector);
    const d = this.paddedDim;
    let l1 = 0;
    let l2 = 0;
    for (let j = 0; j < d; j++) {
      l1 += Math.abs(y[j]!);
      l2 += y[j]! * y[j]!;
    }
    // RaBitQ: <y, z> ~ |y|^2 / |y|_1 * sum_j sign(y_j) z_j, unbiased, with error deviation
    // |y| |z| sqrt((1 - c^2) / (c^2 (d - 1))) where c = |y|_1 / (sqrt(d) |y|).
    const scale = l1 > 0 ? l2 / l1 : 0;
    const c = l1 > 0 ? l1 / Math.sqrt(d * l2) : 1;
    const noise = Math.sqrt((l2 * (1 - c * c)) / (c * c * (d - 1)));
    this.scaleMax = Math.max(this.scaleMax, scale);
    const lane = i & 15;
    const bytes = this.codes.u8((i >> 4) * this.blockBytes, this.codeBytes * LANES);
    for (let p = 0; p < this.codeBytes; p++) {
      let byte = 0;
      for (let t = 0; t < 8; t++) if (y[8 * p + t]! > 0) byte |= 1 << t;
      bytes[p * LANES + lane] = byte;
    }
    let offset = 0;
    if (this.centre) for (let j = 0; j < this.dimension; j++) offset += (vector[j]! - this.centre[j]!) * this.centre[j]!;
    const meta = this.meta(i);
    meta[lane] = scale;
    meta[LANES + lane] = offset;
    meta[2 * LANES + lane] = noise;
  }

  private moveSketch(from: number, to: number): void {
    if (from !== to) {
      const src = this.codes.u8((from >> 4) * this.blockBytes, this.codeBytes * LANES);
      const dst = this.codes.u8((to >> 4) * this.blockBytes, this.codeBytes * LANES);
      for (let p = 0; p < this.codeBytes; p++) dst[p * LANES + (to & 15)] = src[p * LANES + (from & 15)]!;
      const a = this.meta(from);
      const b = this.meta(to);
      for (let m = 0; m < 3; m++) b[m * LANES + (to & 15)] = a[m * LANES + (from & 15)]!;
    }
    this.clear(from);
  }

  /** An empty lane bounds at -Infinity (scale 0, offset -Infinity), so it is never selected. */
  private clear(i: number): void {
    const meta = this.meta(i);
    meta[i & 15] = 0;
    meta[LANES + (i & 15)] = -Infinity;
    meta[2 * LANES + (i & 15)] = 0;
  }

  /** Upper bounds of <x, q> for every template (-Infinity in the last block's empty lanes). */
  private bounds(query: Float32Array): { values: Float32Array; scratch: number } {
    const blocks = this.blocks;
    for (let i = this.refs.length; i < blocks * LANES; i++) this.clear(i);
    const z = this.rotate(query);
    const lut = blocks * this.blockBytes;
    const out = lut + this.codeBytes * 2 * LANES;
    const scratch = out + blocks * LANES * 4;
    this.codes.reserve(scratch + blocks * LANES * 4);
    const step = this.tables(z, this.codes.i8(lut, this.codeBytes * 2 * LANES));
    let zz = 0;
    for (let j = 0; j < this.paddedDim; j++) zz += z[j]! * z[j]!;
    // <x, q> = <x - m, q - m> + <x - m, m> + <m, q>; the offsets hold <x - m, m>.
    let qadd = 0;
    if (this.centre) for (let j = 0; j < this.dimension; j++) qadd += this.centre[j]! * query[j]!;
    // Table rounding: at most half a step in each of d/4 lookups, deviation step * sqrt(d/48).
    const rounding = step * this.scaleMax * Math.sqrt(this.paddedDim / 48);
    this.codes.kernels.scan(lut, 0, blocks, this.codeBytes, step, this.epsilon * Math.sqrt(zz), qadd + this.epsilon * rounding, out);
    return { values: this.codes.f32(out, blocks * LANES), scratch };
  }

  /**
   * Per 4 coordinates, the 16 sums of +-z over the sign patterns, as int8 in [-15, 15] (the scan
   * adds eight lookups in int8). Returns the quantisation step.
   */
  private tables(z: Float64Array, lut: Int8Array): number {
    const groups = this.paddedDim / 4;
    let largest = 0;
    for (let g = 0; g < groups; g++) largest = Math.max(largest, Math.abs(z[4 * g]!) + Math.abs(z[4 * g + 1]!) + Math.abs(z[4 * g + 2]!) + Math.abs(z[4 * g + 3]!));
    const step = largest > 0 ? largest / 15 : 1;
    for (let g = 0; g < groups; g++) {
      for (let nibble = 0; nibble < 16; nibble++) {
        let sum = 0;
        for (let t = 0; t < 4; t++) sum += (nibble >> t) & 1 ? z[4 * g + t]! : -z[4 * g + t]!;
        lut[g * 16 + nibble] = Math.round(sum / step);
      }
    }
    return step;
  }

  /**
   * Thresholds from a sample of the bounds (one in SAMPLE_STRIDE) that about `first` and then
   * `last` templates reach; the sample reads one cache line in 16 of the bounds.
   */
  private thresholds(values: Float32Array, first: number, last: number): number[] {
    const size = Math.floor(values.length / SAMPLE_STRIDE);
    if (this.sample.length < size) this.sample = new Float32Array(size);
    const sample = this.sample.subarray(0, size);
    for (let b = 0; b < size; b++) sample[b] = values[b * SAMPLE_STRIDE + (b & 15)]!;
    // A rank past the sample (a small gallery, a budget above its size) has no threshold.
    const ranks = [Math.ceil(first / SAMPLE_STRIDE), Math.ceil(last / SAMPLE_STRIDE)].map((r) => (r <= size ? r : 0));
    const top = topK(sample, Math.max(...ranks));
    return ranks.map((r) => (r > 0 ? sample[top[r - 1]!]! : -Infinity));
  }

  /** Indices of the templates whose bound reaches the threshold (a view into scratch). */
  private select(bounds: { values: Float32Array; scratch: number }, threshold: number): Int32Array {
    const count = this.codes.kernels.select(bounds.values.byteOffset, bounds.values.length, threshold, bounds.scratch);
    return this.codes.i32(bounds.scratch, count);
  }
}

/** The k best of what was held and the newly scored, best first. */
function merge(best: { index: number; similarity: number }[], indices: Int32Array, exact: Float32Array, k: number): { index: number; similarity: number }[] {
  const fresh = topK(exact, Math.min(k, exact.length)).map((t) => ({ index: indices[t]!, similarity: exact[t]! }));
  return [...best, ...fresh].sort((a, b) => b.similarity - a.similarity).slice(0, k);
}
