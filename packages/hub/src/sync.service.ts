import {
  deviceConfigMessage,
  encodeVector,
  parseMessage,
  syncRequestMessage,
  topics,
  type GalleryChange,
  type SyncChangesMessage,
} from '@facefleet/protocol';
import type { BrokerPort } from './mqtt/broker.js';
import type { DevicesRepo, GalleriesRepo, SubjectsRepo } from './store/ports.js';

/** A device further behind than this gets a snapshot; log entries this far below the head are compacted away. */
export const SNAPSHOT_AFTER = 1000;

/** A device new (0), ahead of the head (the hub's store was replaced) or more than SNAPSHOT_AFTER behind. */
function farBehind(seq: number, head: number): boolean {
  return seq === 0 || seq > head || head - seq > SNAPSHOT_AFTER;
}
/** A snapshot part holds about this many bytes of JSON (about 370 templates of 512 floats). */
export const DEFAULT_PART_BYTES = 1 << 20;
/** A snapshot nobody asked for in this long is dropped from memory (it is rebuilt when needed). */
const SNAPSHOT_IDLE_MS = 5 * 60_000;

interface Snapshot {
  toSeq: number;
  parts: Buffer[];
  templates: number;
}

/**
 * Gallery sync as a log: every change appends (gallery, seq, op, subject) and republishes the
 * gallery's retained head; a device asks for what changed since its sequence and gets the
 * changes resolved to the subjects' current state, or a snapshot when far behind.
 *
 * A snapshot is cut into parts of about `partBytes` and sent one part per request: the device
 * asks for part i+1 once it has staged part i, so a slow link holds one part in flight, the
 * broker never queues a whole gallery per device, and a device that restarts resumes. The parts
 * of a gallery's latest snapshots are built once and served to every device from memory.
 */
export class SyncService {
  private readonly snapshots = new Map<string, Promise<Snapshot>>();
  private readonly expiry = new Map<string, NodeJS.Timeout>();
  private readonly deltas = new Map<string, Buffer>();

  constructor(
    private readonly broker: BrokerPort,
    private readonly galleries: GalleriesRepo,
    private readonly subjects: SubjectsRepo,
    private readonly devices: DevicesRepo,
    private readonly log: (msg: string) => void,
    private readonly partBytes = DEFAULT_PART_BYTES,
    /** What else a device's retained config carries (its models, the signing key). */
    private readonly configExtras: (deviceId: string) => Promise<Record<string, unknown>> = () => Promise.resolve({}),
  ) {}

  /** Record a change of a subject in each of `galleryIds` and announce the new heads. */
  async changed(subjectId: string, op: 'upsert' | 'delete', galleryIds: readonly string[]): Promise<void> {
    await this.announce(await this.galleries.append(galleryIds, op, subjectId));
  }

  /** Publish new heads (retained) so devices ask for what changed. */
  async announce(heads: readonly { galleryId: string; seq: number }[]): Promise<void> {
    for (const { galleryId, seq } of heads) await this.publishHead(galleryId, seq);
  }

  /**
   * A head only moves forward on the broker: with several hub replicas, two may publish heads of
   * one gallery out of order, so the head published is the store's current one, never older.
   */
  private async publishHead(galleryId: string, seq: number): Promise<void> {
    const head = Math.max(seq, await this.galleries.head(galleryId));
    await this.broker.publish(topics.galleryHead(galleryId), JSON.stringify({ galleryId, seq: head }), { retain: true });
  }

  /** Retained state is rebuilt from the store at start: heads of every gallery, every device's config. */
  async publishAll(): Promise<void> {
    for (const g of await this.galleries.list()) await this.publishHead(g.id, g.headSeq);
    for (const d of await this.devices.list()) if (d.revokedAt === null) await this.publishConfig(d.id);
  }

  async publishConfig(deviceId: string): Promise<void> {
    const msg = deviceConfigMessage.parse({ galleries: await this.devices.galleries(deviceId), ...(await this.configExtras(deviceId)) });
    await this.broker.publish(topics.config(deviceId), JSON.stringify(msg), { retain: true });
  }

  async onSyncRequest(deviceId: string, payload: Buffer): Promise<void> {
    const parsed = parseMessage(syncRequestMessage, payload);
    if (!parsed.ok) {
      this.log(`sync: dropped a malformed request from ${deviceId}: ${parsed.reason}`);
      return;
    }
    for (const g of await this.devices.galleries(deviceId)) {
      const answer = await this.answer(g, parsed.value.galleries[g] ?? 0, parsed.value.resume?.[g]);
      await this.broker.publish(topics.syncChanges(deviceId), answer, { qos: 1 });
    }
  }

  /** The message for a device of gallery `galleryId` at `seq` (or resuming a snapshot). */
  async answer(galleryId: string, seq: number, resume?: { toSeq: number; part: number }): Promise<Buffer> {
    const head = await this.galleries.head(galleryId);
    if (resume !== undefined) {
      const key = `${galleryId}\u0000${resume.toSeq}`;
      const snap = this.snapshots.has(key) || resume.toSeq === head ? await this.snapshot(galleryId, resume.toSeq) : undefined;
      if (snap !== undefined && resume.part < snap.parts.length) return snap.parts[resume.part]!;
      // That snapshot is gone (the head moved on and it was evicted): start the current one over.
    }
    if (seq !== head && farBehind(seq, head)) return (await this.snapshot(galleryId, head)).parts[0]!;
    const key = `${galleryId}\u0000${seq}\u0000${head}`;
    let delta = this.deltas.get(key);
    if (delta === undefined) {
      delta = Buffer.from(JSON.stringify(await this.changesFor(galleryId, seq)));
      if (this.deltas.size >= 8) this.deltas.delete(this.deltas.keys().next().value!);
      this.deltas.set(key, delta);
    }
    return delta;
  }

  /** What changed in a gallery since `seq`, resolved to current state (a whole snapshot when far behind). */
  async changesFor(galleryId: string, seq: number): Promise<SyncChangesMessage> {
    const head = await this.galleries.head(galleryId);
    if (seq === head) return { galleryId, fromSeq: seq, toSeq: head, snapshot: false, changes: [] };
    if (!farBehind(seq, head)) {
      const entries = await this.galleries.since(galleryId, seq, SNAPSHOT_AFTER);
      // A gap after `seq` means the log was compacted past it meanwhile: the whole gallery then.
      if (entries[0]?.seq === seq + 1) {
        const touched = [...new Set(entries.map((e) => e.subjectId))];
        const members = new Set(await this.galleries.members(galleryId));
        const present = new Set((await this.subjects.names(touched.filter((id) => members.has(id)))).keys());
        const deleted = touched.filter((id) => !present.has(id));
        const changes: GalleryChange[] = [...(await this.upserts([...present])), ...deleted.map((subjectId) => ({ op: 'delete' as const, subjectId }))];
        return { galleryId, fromSeq: seq, toSeq: head, snapshot: false, changes };
      }
    }
    return { galleryId, fromSeq: 0, toSeq: head, snapshot: true, changes: await this.upserts(await this.galleries.members(galleryId)) };
  }


  /**
   * Snapshot of a gallery at `toSeq` (its head when built), cut into parts. The last two per
   * gallery are kept (devices part-way through the older one finish it), each until it has not
   * been asked for in SNAPSHOT_IDLE_MS.
   */
  private snapshot(galleryId: string, toSeq: number): Promise<Snapshot> {
    const key = `${galleryId}\u0000${toSeq}`;
    let snap = this.snapshots.get(key);
    if (snap === undefined) {
      snap = this.buildSnapshot(galleryId, toSeq);
      snap.catch(() => this.forget(key));
      for (const k of [...this.snapshots.keys()].filter((k) => k.startsWith(`${galleryId}\u0000`)).slice(0, -1)) this.forget(k);
      this.snapshots.set(key, snap);
    }
    clearTimeout(this.expiry.get(key));
    this.expiry.set(key, setTimeout(() => this.forget(key), SNAPSHOT_IDLE_MS).unref());
    return snap;
  }

  private forget(key: string): void {
    clearTimeout(this.expiry.get(key));
    this.expiry.delete(key);
    this.snapshots.delete(key);
  }

  /** Drop what is kept in memory (at shutdown). */
  close(): void {
    for (const k of [...this.snapshots.keys()]) this.forget(k);
    this.deltas.clear();
  }

  /**
   * Members are read at `toSeq`; templates are read in chunks with a yield between them, so a change
   * made meanwhile may already show in a later part. The log after `toSeq` holds that change too,
   * and the device applies it next, so it converges on the same state either way.
   */
  private async buildSnapshot(galleryId: string, toSeq: number): Promise<Snapshot> {
    const started = performance.now();
    const members = await this.galleries.members(galleryId);
    const parts: GalleryChange[][] = [];
    let current: GalleryChange[] = [];
    let bytes = 0;
    let templates = 0;
    for (let i = 0; i < members.length; i += 500) {
      for (const change of await this.upserts(members.slice(i, i + 500))) {
        if (change.op !== 'upsert') continue;
        const size = 120 + change.name.length + change.templates.reduce((n, t) => n + t.vector.length + t.id.length + t.modelId.length + 40, 0);
        if (current.length > 0 && bytes + size > this.partBytes) {
          parts.push(current);
          current = [];
          bytes = 0;
        }
        current.push(change);
        bytes += size;
        templates += change.templates.length;
      }
      await new Promise((r) => setImmediate(r));
    }
    parts.push(current);
    const count = parts.length;
    const out = parts.map((changes, index) =>
      Buffer.from(JSON.stringify({ galleryId, fromSeq: 0, toSeq, snapshot: true, changes, ...(count > 1 ? { part: { index, count } } : {}) } satisfies SyncChangesMessage)),
    );
    if (templates >= 10_000) this.log(`sync: snapshot of gallery ${galleryId} at ${toSeq}: ${templates} templates in ${count} parts, built in ${Math.round(performance.now() - started)} ms`);
    return { toSeq, parts: out, templates };
  }

  private async upserts(subjectIds: readonly string[]): Promise<GalleryChange[]> {
    const [names, templates] = await Promise.all([this.subjects.names(subjectIds), this.subjects.templates(subjectIds)]);
    const bySubject = new Map<string, { id: string; modelId: string; vector: string }[]>();
    for (const t of templates) {
      const list = bySubject.get(t.subjectId) ?? [];
      list.push({ id: t.id, modelId: t.modelId, vector: encodeVector(t.vector) });
      bySubject.set(t.subjectId, list);
    }
    return subjectIds.flatMap((id) => {
      const name = names.get(id);
      return name === undefined ? [] : [{ op: 'upsert' as const, subjectId: id, name, templates: bySubject.get(id) ?? [] }];
    });
  }
}
