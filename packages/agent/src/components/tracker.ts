import { assignUnique, type MatchDecision } from '@facefleet/gallery';
import { iou, l2normalise, type Box } from '@facefleet/vision';

export interface TrackerOptions {
  /** IoU at or above which a face continues a track. */
  iou: number;
  /** A track not seen for this long ends. */
  maxAgeMs: number;
  /** Observations before a track may produce an event (1 for stills). */
  minHits: number;
  /** Embeddings kept per track: the best by quality. */
  bestFaces: number;
  threshold: number;
  /** After an event for a subject, no new event for that subject from this source for this long. */
  cooldownMs: number;
  unknownEvents: boolean;
  /** Independent still images (folder): every frame's tracks end with the frame, no cooldown. */
  stills: boolean;
}

export interface Emission {
  type: 'recognition' | 'unknown';
  trackId: string;
  subjectId: string | null;
  similarity: number;
  samples: number;
  quality: number;
}

interface Sample {
  vector: Float32Array;
  quality: number;
}

interface Track {
  id: string;
  box: Box;
  lastSeenAt: number;
  hits: number;
  samples: Sample[];
  emitted: boolean;
  seenThisFrame: boolean;
  dirty: boolean;
}

/**
 * Links faces across frames (greedy IoU), keeps each track's best-quality embeddings, and turns
 * tracks into events: one per subject per passage, not one per frame. A track's identity is the
 * decision on the quality-weighted mean of its embeddings (template aggregation), so one blurred
 * frame does not decide alone. Pure logic: time comes from the frames.
 */
export class Tracker {
  private tracks: Track[] = [];
  private next = 1;
  private readonly lastEventAt = new Map<string, number>();

  constructor(
    private readonly o: TrackerOptions,
    private readonly prefix = 't',
  ) {}

  get activeTracks(): number {
    return this.tracks.length;
  }

  /** Assign each box to a track (new or continued); returns the track id per box. */
  associate(at: number, boxes: readonly Box[]): string[] {
    for (const t of this.tracks) t.seenThisFrame = false;
    const pairs: { b: number; t: Track; v: number }[] = [];
    boxes.forEach((box, b) => {
      for (const t of this.tracks) {
        const v = iou(box, t.box);
        if (v >= this.o.iou) pairs.push({ b, t, v });
      }
    });
    pairs.sort((x, y) => y.v - x.v);
    const ids: (string | undefined)[] = boxes.map(() => undefined);
    for (const p of pairs) {
      if (ids[p.b] !== undefined || p.t.seenThisFrame) continue;
      ids[p.b] = p.t.id;
      p.t.seenThisFrame = true;
      p.t.box = boxes[p.b]!;
      p.t.lastSeenAt = at;
      p.t.hits++;
    }
    return boxes.map((box, b) => {
      const existing = ids[b];
      if (existing !== undefined) return existing;
      const t: Track = { id: `${this.prefix}${this.next++}`, box, lastSeenAt: at, hits: 1, samples: [], emitted: false, seenThisFrame: true, dirty: false };
      this.tracks.push(t);
      return t.id;
    });
  }

  /** Whether a face of this quality would join the track's best samples (so it is worth embedding). */
  wantsEmbedding(trackId: string, quality: number): boolean {
    const t = this.find(trackId);
    if (!t || t.emitted) return false;
    if (t.samples.length < this.o.bestFaces) return true;
    return quality > Math.min(...t.samples.map((s) => s.quality));
  }

  addSample(trackId: string, vector: Float32Array, quality: number): void {
    const t = this.find(trackId);
    if (!t) return;
    t.samples.push({ vector, quality });
    t.samples.sort((a, b) => b.quality - a.quality);
    t.samples.length = Math.min(t.samples.length, this.o.bestFaces);
    t.dirty = true;
  }

  /**
   * Decide the tracks that changed in this frame (one subject per face across the frame), emit
   * what is due, and end stale tracks. `decide` matches a template against the gallery.
   */
  finishFrame(at: number, decide: (vector: Float32Array) => MatchDecision): Emission[] {
    const emissions: Emission[] = [];
    const ready = this.tracks.filter((t) => t.dirty && !t.emitted && t.samples.length > 0 && (this.o.stills || t.hits >= this.o.minHits));
    const decisions = assignUnique(ready.map((t) => decide(this.template(t))), this.o.threshold);
    ready.forEach((t, i) => {
      t.dirty = false;
      const d = decisions[i]!;
      if (d.kind !== 'match') return;
      const last = this.lastEventAt.get(d.subjectId);
      t.emitted = true;
      if (!this.o.stills && last !== undefined && at - last < this.o.cooldownMs) return;
      this.lastEventAt.set(d.subjectId, at);
      emissions.push(this.emission(t, 'recognition', d.subjectId, d.similarity));
    });
    const ending = this.o.stills ? this.tracks : this.tracks.filter((t) => at - t.lastSeenAt > this.o.maxAgeMs);
    for (const t of ending) {
      if (this.o.unknownEvents && !t.emitted && t.samples.length > 0 && (this.o.stills || t.hits >= this.o.minHits)) {
        const d = decide(this.template(t));
        if (d.kind === 'unknown') emissions.push(this.emission(t, 'unknown', null, d.similarity));
      }
    }
    const endingIds = new Set(ending.map((t) => t.id));
    this.tracks = this.tracks.filter((t) => !endingIds.has(t.id));
    return emissions;
  }

  private template(t: Track): Float32Array {
    const dim = t.samples[0]!.vector.length;
    const sum = new Float32Array(dim);
    for (const s of t.samples) {
      const w = Math.max(0.05, s.quality);
      for (let k = 0; k < dim; k++) sum[k]! += s.vector[k]! * w;
    }
    return l2normalise(sum);
  }

  private emission(t: Track, type: Emission['type'], subjectId: string | null, similarity: number): Emission {
    const quality = Math.max(...t.samples.map((s) => s.quality));
    return { type, trackId: t.id, subjectId, similarity, samples: t.samples.length, quality };
  }

  private find(id: string): Track | undefined {
    return this.tracks.find((t) => t.id === id);
  }
}
