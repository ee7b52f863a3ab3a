import { ModelError } from '@facefleet/protocol';

export interface TemplateRef {
  templateId: string;
  subjectId: string;
}

export interface TemplateHit extends TemplateRef {
  similarity: number;
}

/**
 * Exact cosine search over L2-normalised vectors of one model, held in one contiguous
 * Float32Array (row-major) so a query is a single tight dot-product loop.
 */
export class FlatIndex {
  private data: Float32Array;
  private refs: TemplateRef[] = [];

  private dimension: number;
  private capacity: number;

  /** `dim` 0 takes the size of the first vector added. */
  constructor(
    readonly modelId: string,
    dim = 0,
    capacity = 1024,
  ) {
    this.dimension = dim;
    this.capacity = capacity;
    this.data = new Float32Array(capacity * dim);
  }

  get dim(): number {
    return this.dimension;
  }

  get size(): number {
    return this.refs.length;
  }

  add(ref: TemplateRef, vector: Float32Array): void {
    if (this.dimension === 0) {
      this.dimension = vector.length;
      this.data = new Float32Array(this.capacity * this.dimension);
    }
    if (vector.length !== this.dim) {
      throw new ModelError(`template of size ${vector.length} cannot join an index of size ${this.dim}`, { mismatch: true });
    }
    if ((this.refs.length + 1) * this.dim > this.data.length) {
      const grown = new Float32Array(Math.max(this.data.length * 2, this.dim * 1024));
      grown.set(this.data);
      this.data = grown;
    }
    this.data.set(vector, this.refs.length * this.dim);
    this.refs.push(ref);
  }

  /** Remove every template of a subject (swap-with-last keeps the matrix dense). */
  removeSubject(subjectId: string): number {
    let removed = 0;
    for (let i = this.refs.length - 1; i >= 0; i--) {
      if (this.refs[i]!.subjectId !== subjectId) continue;
      const last = this.refs.length - 1;
      if (i !== last) {
        this.data.copyWithin(i * this.dim, last * this.dim, (last + 1) * this.dim);
        this.refs[i] = this.refs[last]!;
      }
      this.refs.pop();
      removed++;
    }
    return removed;
  }

  /** The k most similar templates, best first. */
  search(query: Float32Array, k: number): TemplateHit[] {
    if (this.refs.length === 0) return [];
    if (query.length !== this.dim) {
      throw new ModelError(`query of size ${query.length} cannot search an index of size ${this.dim}`, { mismatch: true });
    }
    const n = this.refs.length;
    const scores = new Float32Array(n);
    const d = this.dim;
    const data = this.data;
    for (let i = 0; i < n; i++) {
      let dot = 0;
      const base = i * d;
      for (let j = 0; j < d; j++) dot += data[base + j]! * query[j]!;
      scores[i] = dot;
    }
    return topK(scores, Math.min(k, n)).map((i) => ({ ...this.refs[i]!, similarity: scores[i]! }));
  }
}

/** Indices of the k largest scores, largest first (a small sorted buffer; k is small). */
export function topK(scores: Float32Array, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (idx.length === k && s <= scores[idx[k - 1]!]!) continue;
    let pos = idx.length === k ? k - 1 : idx.length;
    if (idx.length < k) idx.push(i);
    while (pos > 0 && scores[idx[pos - 1]!]! < s) {
      idx[pos] = idx[pos - 1]!;
      pos--;
    }
    idx[pos] = i;
  }
  return idx;
}
