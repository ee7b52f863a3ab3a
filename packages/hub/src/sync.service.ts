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
import type { DevicesRepository } from './store/devices.repository.js';
import type { GalleriesRepository } from './store/galleries.repository.js';
import type { SubjectsRepository } from './store/subjects.repository.js';

/** More changes than this behind the head, and a device gets a snapshot instead of the log. */
const SNAPSHOT_AFTER = 1000;

/**
 * Gallery sync as a log: every change appends (gallery, seq, op, subject) and republishes the
 * gallery's retained head; a device asks for what changed since its sequence and gets the
 * changes resolved to the subjects' current state (or a snapshot when far behind).
 */
export class SyncService {
  constructor(
    private readonly broker: BrokerPort,
    private readonly galleries: GalleriesRepository,
    private readonly subjects: SubjectsRepository,
    private readonly devices: DevicesRepository,
    private readonly log: (msg: string) => void,
  ) {}

  /** Record a change of a subject in each of `galleryIds` and announce the new heads. */
  async changed(subjectId: string, op: 'upsert' | 'delete', galleryIds: readonly string[]): Promise<void> {
    for (const g of galleryIds) {
      const seq = this.galleries.append(g, op, subjectId);
      await this.broker.publish(topics.galleryHead(g), JSON.stringify({ galleryId: g, seq }), { retain: true });
    }
  }

  /** Retained state is rebuilt from the store at start: heads of every gallery, every device's config. */
  async publishAll(): Promise<void> {
    for (const g of this.galleries.list()) await this.broker.publish(topics.galleryHead(g.id), JSON.stringify({ galleryId: g.id, seq: g.headSeq }), { retain: true });
    for (const d of this.devices.list()) if (d.revokedAt === null) await this.publishConfig(d.id);
  }

  async publishConfig(deviceId: string): Promise<void> {
    const msg = deviceConfigMessage.parse({ galleries: this.devices.galleries(deviceId) });
    await this.broker.publish(topics.config(deviceId), JSON.stringify(msg), { retain: true });
  }

  async onSyncRequest(deviceId: string, payload: Buffer): Promise<void> {
    const parsed = parseMessage(syncRequestMessage, payload);
    if (!parsed.ok) {
      this.log(`sync: dropped a malformed request from ${deviceId}: ${parsed.reason}`);
      return;
    }
    for (const g of this.devices.galleries(deviceId)) {
      await this.broker.publish(topics.syncChanges(deviceId), this.serialised(g, parsed.value.galleries[g] ?? 0), { qos: 1 });
    }
  }

  /**
   * The same answer serves every device at the same sequence (a fleet asking for a snapshot after
   * an enrolment burst): keep the last few, valid until the gallery's head moves.
   */
  private readonly cache = new Map<string, string>();

  private serialised(galleryId: string, seq: number): string {
    const key = `${galleryId}\u0000${seq}\u0000${this.galleries.head(galleryId)}`;
    let text = this.cache.get(key);
    if (text === undefined) {
      text = JSON.stringify(this.changesFor(galleryId, seq));
      if (this.cache.size >= 8) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, text);
    }
    return text;
  }

  changesFor(galleryId: string, seq: number): SyncChangesMessage {
    const head = this.galleries.head(galleryId);
    if (seq === head) return { galleryId, fromSeq: seq, toSeq: head, snapshot: false, changes: [] };
    if (seq === 0 || seq > head || head - seq > SNAPSHOT_AFTER) {
      const members = this.galleries.members(galleryId);
      return { galleryId, fromSeq: 0, toSeq: head, snapshot: true, changes: this.upserts(members) };
    }
    const entries = this.galleries.since(galleryId, seq, SNAPSHOT_AFTER);
    const touched = [...new Set(entries.map((e) => e.subjectId))];
    const members = new Set(this.galleries.members(galleryId));
    const present = touched.filter((id) => members.has(id) && this.subjects.get(id) !== undefined);
    const deleted = touched.filter((id) => !present.includes(id));
    const changes: GalleryChange[] = [...this.upserts(present), ...deleted.map((subjectId) => ({ op: 'delete' as const, subjectId }))];
    return { galleryId, fromSeq: seq, toSeq: head, snapshot: false, changes };
  }

  private upserts(subjectIds: readonly string[]): GalleryChange[] {
    const templates = this.subjects.templates(subjectIds);
    return subjectIds.flatMap((id) => {
      const s = this.subjects.get(id);
      if (!s) return [];
      return [{ op: 'upsert' as const, subjectId: id, name: s.name, templates: templates.filter((t) => t.subjectId === id).map((t) => ({ id: t.id, modelId: t.modelId, vector: encodeVector(t.vector) })) }];
    });
  }
}
