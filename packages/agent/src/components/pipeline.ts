import { randomUUID } from 'node:crypto';
import { decide, type GalleryStore } from '@facefleet/gallery';
import type { EventMessage } from '@facefleet/protocol';
import type { FaceAnalyzer } from '@facefleet/vision';
import type { AgentConfig } from '../config.js';
import type { Frame } from '../sources/source.js';
import type { Metrics } from './metrics.js';
import { Tracker, type Emission } from './tracker.js';

export interface PipelineDeps {
  config: AgentConfig;
  /** The analyzer at start; `setAnalyzer` swaps it between frames. */
  analyzer: FaceAnalyzer;
  gallery: GalleryStore;
  metrics: Metrics;
  threshold: number;
  /** Store the event durably (outbox) before the pipeline moves on. */
  onEvent: (event: EventMessage) => void;
  log: { warn: (obj: object, msg: string) => void; debug: (obj: object, msg: string) => void };
}

/**
 * Frames in, events out, one frame at a time. The queue is bounded: a live source that outruns
 * inference loses its oldest waiting frame (counted), a discrete source (folder) waits its turn.
 */
export class Pipeline {
  private readonly queue: { frame: Frame; live: boolean }[] = [];
  private readonly waiters: (() => void)[] = [];
  private wake?: () => void;
  private running = false;
  private loop?: Promise<void>;
  private readonly trackers = new Map<string, Tracker>();
  /** The embedder and threshold the trackers were made for: their embeddings belong to that model. */
  private trackersFor = '';
  private idle = true;
  private analyzer: FaceAnalyzer;
  private threshold: number;
  /** Settles when the frame being processed is done. */
  private inFlight: Promise<void> = Promise.resolve();

  constructor(private readonly d: PipelineDeps) {
    this.analyzer = d.analyzer;
    this.threshold = d.threshold;
  }

  /** The analyzer frames go through now. */
  get current(): { analyzer: FaceAnalyzer; threshold: number } {
    return { analyzer: this.analyzer, threshold: this.threshold };
  }

  /**
   * Swap the analyzer (a model update, issue 5). The next frame uses the new one; the frame in
   * flight finishes with the old one, and this resolves once it has, so the caller may then close
   * the old analyzer. Recognition never pauses for more than that one frame. A new embedder (or
   * threshold) starts the tracks afresh: their embeddings are of the old model.
   */
  async setAnalyzer(analyzer: FaceAnalyzer, threshold: number): Promise<FaceAnalyzer> {
    const old = this.analyzer;
    this.analyzer = analyzer;
    this.threshold = threshold;
    await this.inFlight;
    return old;
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /**
   * Offer a frame. `live` (video) frames are tracked across frames; other frames are independent
   * stills. By default a live frame never waits (the oldest queued live frame is dropped when the
   * queue is full) and a still waits for room; `wait` overrides that (benchmarks feed video as
   * fast as it is taken, without drops).
   */
  async offer(frame: Frame, live: boolean, wait = !live): Promise<void> {
    const m = this.d.metrics;
    m.inc('facefleet_frames_in_total', 'Frames received from sources', 1, { source: frame.source });
    if (!this.running) return;
    const max = this.d.config.pipeline.queueSize;
    if (!wait) {
      if (this.queue.length >= max) {
        const dropIndex = this.queue.findIndex((q) => q.live);
        if (dropIndex >= 0) {
          const [dropped] = this.queue.splice(dropIndex, 1);
          dropped!.frame.done?.();
          m.inc('facefleet_frames_dropped_total', 'Frames dropped because inference was behind', 1, { source: dropped!.frame.source });
        } else {
          m.inc('facefleet_frames_dropped_total', 'Frames dropped because inference was behind', 1, { source: frame.source });
          return;
        }
      }
    } else {
      while (this.queue.length >= max && this.running) await new Promise<void>((r) => this.waiters.push(r));
    }
    this.queue.push({ frame, live });
    this.wake?.();
  }

  /** Resolves when the queue is empty and no frame is in flight. */
  async drained(): Promise<void> {
    while (this.queue.length > 0 || !this.idle) await new Promise((r) => setTimeout(r, 20));
  }

  private async run(): Promise<void> {
    while (this.running || this.queue.length > 0) {
      const next = this.queue.shift();
      this.waiters.shift()?.();
      if (!next) {
        this.idle = true;
        await new Promise<void>((r) => (this.wake = r));
        this.wake = undefined;
        continue;
      }
      this.idle = false;
      let done: () => void = () => undefined;
      this.inFlight = new Promise<void>((r) => (done = r));
      try {
        await this.process(next.frame, next.live, this.analyzer, this.threshold);
      } catch (err) {
        this.d.metrics.inc('facefleet_frame_errors_total', 'Frames that failed in the pipeline', 1, { source: next.frame.source });
        this.d.log.warn({ source: next.frame.source, frame: next.frame.label, err: (err as Error).message }, 'frame failed');
      } finally {
        done();
      }
      next.frame.done?.();
    }
    this.idle = true;
  }

  private tracker(source: string, stills: boolean, embedderId: string, threshold: number): Tracker {
    const key = `${embedderId}@${threshold}`;
    if (key !== this.trackersFor) {
      this.trackers.clear();
      this.trackersFor = key;
    }
    let t = this.trackers.get(source);
    if (!t) {
      const c = this.d.config;
      t = new Tracker(
        { ...c.tracker, threshold, cooldownMs: c.recognition.cooldownMs, unknownEvents: c.recognition.unknownEvents, stills },
        `${source}-`,
      );
      this.trackers.set(source, t);
    }
    return t;
  }

  private async process(frame: Frame, live: boolean, analyzer: FaceAnalyzer, threshold: number): Promise<void> {
    const { metrics: m, config: c } = this.d;
    const stage = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
      const t0 = performance.now();
      try {
        return await work();
      } finally {
        m.observe('facefleet_stage_latency_ms', 'Per-stage latency in milliseconds', performance.now() - t0, { stage: name });
      }
    };
    let image;
    try {
      image = await stage('decode', () => analyzer.decode(frame.bytes));
    } catch (err) {
      m.inc('facefleet_decode_errors_total', 'Frames that could not be decoded', 1, { source: frame.source });
      this.d.log.warn({ source: frame.source, frame: frame.label, err: (err as Error).message }, 'cannot decode frame');
      return;
    }
    const faces = (await stage('detect', () => analyzer.detect(image))).filter(
      (f) => Math.min(f.box.width, f.box.height) >= c.recognition.minFaceSizePx && f.quality.score >= c.recognition.minQuality,
    );
    m.inc('facefleet_faces_total', 'Faces that passed the size and quality gates', faces.length);
    const tracker = this.tracker(frame.source, !live, analyzer.embedderId, threshold);
    const ids = tracker.associate(frame.at, faces.map((f) => f.box));
    const wanted = faces.map((f, i) => ({ f, id: ids[i]! })).filter(({ f, id }) => tracker.wantsEmbedding(id, f.quality.score));
    let live2 = wanted;
    if (c.recognition.liveness && wanted.length > 0) {
      const scores = await stage('liveness', () => Promise.all(wanted.map(({ f }) => analyzer.liveness(image, f))));
      live2 = wanted.filter((_, i) => scores[i]! >= c.recognition.minLiveness);
      m.inc('facefleet_liveness_rejected_total', 'Faces rejected by the liveness gate', wanted.length - live2.length);
    }
    if (live2.length > 0) {
      const embedded = await stage('embed', () => analyzer.embed(live2.map((w) => w.f)));
      embedded.forEach((e, i) => tracker.addSample(live2[i]!.id, e.embedding.vector, e.quality.score));
    }
    const emissions = await stage('match', () =>
      Promise.resolve(tracker.finishFrame(frame.at, (v) => decide(this.d.gallery.search(analyzer.embedderId, v, 5), threshold))),
    );
    for (const e of emissions) this.emit(e, frame, analyzer.embedderId);
  }

  private emit(e: Emission, frame: Frame, modelId: string): void {
    const event: EventMessage = {
      id: randomUUID(),
      deviceId: this.d.config.deviceId,
      type: e.type,
      subjectId: e.subjectId,
      subject: e.subjectId !== null ? (this.d.gallery.subjectName(e.subjectId) ?? null) : null,
      similarity: Math.round(e.similarity * 10_000) / 10_000,
      at: new Date(frame.at).toISOString(),
      trackId: e.trackId,
      source: `${frame.source}:${frame.label}`,
      modelId,
      faces: e.samples,
      quality: Math.min(1, Math.max(0, e.quality)),
    };
    this.d.onEvent(event);
    this.d.metrics.inc('facefleet_events_total', 'Events produced', 1, { type: e.type });
    this.d.log.debug({ event: event.id, type: event.type, track: e.trackId }, 'event');
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const w of this.waiters.splice(0)) w();
    this.wake?.();
    await this.loop;
  }
}
