import type { GalleryStore, SyncChange } from '@facefleet/gallery';
import {
  decodeVector,
  deviceConfigMessage,
  galleryHeadMessage,
  parseMessage,
  syncChangesMessage,
  topics,
  type DeviceConfigMessage,
  type SyncChangesMessage,
  type SyncRequestMessage,
} from '@facefleet/protocol';

function decodeChanges(m: SyncChangesMessage): SyncChange[] {
  return m.changes.map((c) => (c.op === 'delete' ? c : { ...c, templates: c.templates.map((t) => ({ id: t.id, modelId: t.modelId, vector: decodeVector(t.vector) })) }));
}

export interface SyncLink {
  publish(topic: string, payload: string): void;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  publishStatus(): void;
}

/**
 * The agent's side of gallery sync: follows its assignment (retained config), watches the heads
 * of its galleries, asks for what changed since its sequences, and applies each batch in one
 * SQLite transaction (a gap in the sequence means: ask again). Works entirely from the log, so a
 * device that was offline catches up with enrolments and erasures alike. Templates of every model
 * the hub sends are kept (an embedder rollout sends the old and the new model's); the pipeline
 * matches against those of the embedder it runs. The config's model assignment goes to `onConfig`.
 */
export class GallerySync {
  private assigned: string[] | undefined;
  private requestTimer?: NodeJS.Timeout;
  private fromZero = false;
  applied = 0;
  dropped = 0;

  constructor(
    private readonly deviceId: string,
    private readonly gallery: GalleryStore,
    private readonly link: SyncLink,
    private readonly log: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void },
    /** Every valid config message (model assignment, signing key); galleries are handled here. */
    private readonly onConfig?: (config: DeviceConfigMessage) => void,
    /** A config message that failed validation (the updater reports refused model references). */
    private readonly onInvalidConfig?: (payload: Buffer, reason: string) => void,
  ) {}

  onConnected(): void {
    for (const g of this.assigned ?? []) this.link.subscribe(topics.galleryHead(g));
    this.requestSoon();
  }

  /** Returns true when the message was a sync message (handled or dropped). */
  onMessage(topic: string, payload: Buffer): boolean {
    if (topic === topics.config(this.deviceId)) {
      const m = parseMessage(deviceConfigMessage, payload);
      if (!m.ok) {
        this.onInvalidConfig?.(payload, m.reason);
        return this.drop(topic, m.reason);
      }
      this.setAssignment(m.value.galleries);
      this.onConfig?.(m.value);
      return true;
    }
    if (topic === topics.syncChanges(this.deviceId)) {
      const m = parseMessage(syncChangesMessage, payload);
      if (!m.ok) return this.drop(topic, m.reason);
      this.apply(m.value);
      return true;
    }
    if (topic.endsWith('/head')) {
      const m = parseMessage(galleryHeadMessage, payload);
      if (!m.ok) return this.drop(topic, m.reason);
      const local = this.gallery.sequences()[m.value.galleryId] ?? 0;
      if (this.assigned?.includes(m.value.galleryId) === true && m.value.seq !== local) this.requestSoon();
      return true;
    }
    return false;
  }

  private setAssignment(galleries: string[]): void {
    const before = this.assigned ?? Object.keys(this.gallery.sequences());
    for (const g of before) {
      if (galleries.includes(g)) continue;
      this.link.unsubscribe(topics.galleryHead(g));
      this.gallery.dropGallery(g);
      this.log.info({ gallery: g }, 'gallery unassigned: dropped');
    }
    for (const g of galleries) this.link.subscribe(topics.galleryHead(g));
    this.assigned = galleries;
    this.requestSoon();
  }

  private apply(m: SyncChangesMessage): void {
    if (this.assigned !== undefined && !this.assigned.includes(m.galleryId)) return;
    if (m.part !== undefined && m.part.count > 1) return this.applyPart(m, m.part);
    const local = this.gallery.sequences()[m.galleryId] ?? 0;
    if (!m.snapshot && m.fromSeq !== local) {
      // Out of order or a gap: ask for what we miss instead of applying a partial history.
      if (m.toSeq !== local) this.requestSoon();
      return;
    }
    if (!m.snapshot && m.changes.length === 0 && m.toSeq === local) {
      this.link.publishStatus();
      return;
    }
    const r = this.gallery.applySync(m.galleryId, { snapshot: m.snapshot, toSeq: m.toSeq, changes: decodeChanges(m) });
    this.applied++;
    this.log.info({ gallery: m.galleryId, seq: m.toSeq, snapshot: m.snapshot, ...r }, 'gallery changes applied');
    this.warnSkipped(m.galleryId, r.skippedTemplates);
    this.link.publishStatus();
  }

  /** One part of a large snapshot: staged on disk; the next part is asked for; the last applies the whole. */
  private applyPart(m: SyncChangesMessage, part: { index: number; count: number }): void {
    const r = this.gallery.stageSnapshotPart(m.galleryId, { toSeq: m.toSeq, index: part.index, count: part.count, changes: decodeChanges(m) });
    if (r.state === 'duplicate') return; // a request crossed with the previous answer
    if (r.state === 'restart') {
      this.log.warn({ gallery: m.galleryId, reason: r.reason }, 'snapshot part out of order: asking again');
      this.requestSoon();
      return;
    }
    if (r.state === 'staged') {
      this.warnSkipped(m.galleryId, r.skippedTemplates);
      if (part.index === 0 || (part.index + 1) % 25 === 0) this.log.info({ gallery: m.galleryId, seq: m.toSeq, part: part.index + 1, of: part.count }, 'snapshot part staged');
      this.request();
      return;
    }
    this.applied++;
    this.log.info({ gallery: m.galleryId, seq: m.toSeq, snapshot: true, parts: part.count, ...r.result }, 'gallery changes applied');
    this.warnSkipped(m.galleryId, r.result.skippedTemplates);
    this.link.publishStatus();
    // The head may have moved while the parts travelled: catch up from the snapshot's sequence.
    this.requestSoon();
  }

  private warnSkipped(galleryId: string, skipped: number): void {
    if (skipped > 0) this.log.warn({ gallery: galleryId, skipped }, 'templates skipped');
  }

  /**
   * Ask once for every assigned gallery from sequence 0 (a fresh snapshot): an embedder update
   * found templates of the new model missing (issue 5). The answer replaces the galleries whole.
   */
  requestSnapshot(): void {
    this.fromZero = true;
    this.request();
  }

  /** Coalesce bursts (a head per enrolment) into one request. */
  private requestSoon(): void {
    clearTimeout(this.requestTimer);
    this.requestTimer = setTimeout(() => this.request(), 50);
  }

  private request(): void {
    const seqs = this.gallery.sequences();
    const galleries = this.assigned ?? Object.keys(seqs);
    if (galleries.length === 0 && this.assigned === undefined) return; // wait for the config
    const fromZero = this.fromZero;
    this.fromZero = false;
    const staging = fromZero ? {} : this.gallery.snapshotProgress();
    const resume = Object.fromEntries(galleries.filter((g) => staging[g] !== undefined).map((g) => [g, staging[g]!]));
    const request: SyncRequestMessage = { galleries: Object.fromEntries(galleries.map((g) => [g, fromZero ? 0 : (seqs[g] ?? 0)])), ...(Object.keys(resume).length > 0 ? { resume } : {}) };
    this.link.publish(topics.syncRequest(this.deviceId), JSON.stringify(request));
  }

  private drop(topic: string, reason: string): true {
    this.dropped++;
    this.log.warn({ topic, reason }, 'dropped invalid sync message');
    return true;
  }

  stop(): void {
    clearTimeout(this.requestTimer);
  }
}
