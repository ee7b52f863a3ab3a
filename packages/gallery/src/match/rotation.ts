/**
 * A seeded random rotation: three rounds of random sign flips each followed by a normalised
 * Walsh-Hadamard transform (the structured rotation of Ailon & Chazelle's FJLT, as FAISS and
 * RaBitQ implementations use in place of a dense random orthogonal matrix). O(d log d) a vector
 * instead of O(d^2), and it spreads every input's energy evenly over the coordinates, so each
 * sign bit of the rotated vector carries about the same information. Inputs are zero-padded to
 * the next power of two.
 */
export class RandomRotation {
  readonly paddedDim: number;
  private readonly signs: Float64Array[];

  constructor(
    readonly dim: number,
    seed = 0x5eed,
  ) {
    let padded = 1;
    while (padded < dim) padded *= 2;
    this.paddedDim = padded;
    const random = mulberry32(seed);
    this.signs = [0, 1, 2].map(() => Float64Array.from({ length: padded }, () => (random() < 0.5 ? -1 : 1)));
  }

  /** out = R x (out has paddedDim entries; x has dim). */
  apply(x: Float32Array, out: Float64Array): Float64Array {
    const n = this.paddedDim;
    for (let i = 0; i < n; i++) out[i] = i < x.length ? x[i]! : 0;
    for (const signs of this.signs) {
      for (let i = 0; i < n; i++) out[i]! *= signs[i]!;
      hadamard(out, n);
    }
    // Each unnormalised transform scales by sqrt(n).
    const norm = 1 / (n * Math.sqrt(n));
    for (let i = 0; i < n; i++) out[i]! *= norm;
    return out;
  }
}

/** In-place fast Walsh-Hadamard transform of the first n (a power of two) entries. */
function hadamard(v: Float64Array, n: number): void {
  for (let h = 1; h < n; h *= 2) {
    for (let i = 0; i < n; i += 2 * h) {
      for (let j = i; j < i + h; j++) {
        const a = v[j]!;
        const b = v[j + h]!;
        v[j] = a + b;
        v[j + h] = a - b;
      }
    }
  }
}

/** A small seeded PRNG (mulberry32): uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
