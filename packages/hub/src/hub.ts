import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { assignUnique, decide, FlatIndex } from '@facefleet/gallery';
import { ConfigError, ConflictError, DecodeError, FacefleetError, NotFoundError, type ModelRef } from '@facefleet/protocol';
import { cosine, FaceAnalyzer, findModel, QUALITY_MIN_ENROL, type DetectedFace, type RgbImage } from '@facefleet/vision';
import { IngestService } from './ingest.service.js';
import { EmbeddedBroker, ExternalBroker, type BrokerPort } from './mqtt/broker.js';
import type { HubConfig } from './config.js';
import { entryOf, loadSigningKey, ModelsService } from './models.service.js';
import { RolloutsService } from './rollouts.service.js';
import { readOrCreateSecret } from './secret-file.js';
import { openStore } from './store/open.js';
import { DEFAULT_GALLERY, type HubStore } from './store/ports.js';
import { SNAPSHOT_AFTER, SyncService } from './sync.service.js';

export type FaceStatus = 'ok' | 'noFace' | 'multipleFaces' | 'lowQuality';

/** Faces smaller than this (shorter box side, px) are refused for enrolment as low quality. */
const MIN_ENROL_FACE_PX = 40;

/** How long the leader lease lasts without renewal (a killed leader is replaced after this). */
const LEADER_TTL_MS = 15_000;

/** The key that encrypts kept face crops: FACEFLEET_HUB_CROP_KEY (base64, 32 bytes), else <dataDir>/crop-key made once. */
export function cropKey(dataDir: string): Buffer {
  const env = process.env.FACEFLEET_HUB_CROP_KEY;
  if (env !== undefined && env !== '') {
    const key = Buffer.from(env, 'base64');
    if (key.length !== 32) throw new ConfigError('FACEFLEET_HUB_CROP_KEY must be 32 bytes in base64');
    return key;
  }
  const path = join(dataDir, 'crop-key');
  const key = Buffer.from(readOrCreateSecret(path, () => randomBytes(32).toString('base64')).toString('utf8').trim(), 'base64');
  if (key.length !== 32) throw new ConfigError(`${path} does not hold a 32-byte key in base64`);
  return key;
}

/**
 * The hub's composition root and its domain services, independent of HTTP: the store (SQLite
 * file, or PostgreSQL shared by several replicas), the broker (embedded aedes or external),
 * sync, ingestion, and the models.
 *
 * Several replicas may run against one PostgreSQL and one external broker. Anything may be
 * served by any replica; work that must happen once (rollout waves, retention purges) runs only
 * on the replica holding the `leader` lease in the database, renewed every few seconds and taken
 * over by another replica when its holder dies.
 */
export class Hub {
  readonly keys: HubStore['keys'];
  readonly subjects: HubStore['subjects'];
  readonly galleries: HubStore['galleries'];
  readonly devices: HubStore['devices'];
  readonly events: HubStore['events'];
  readonly models: HubStore['models'];
  readonly rolloutsRepo: HubStore['rollouts'];
  readonly crops: HubStore['crops'];
  readonly registry: ModelsService;
  /** This process's name in leases. */
  readonly replicaId = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  /** True while this replica holds the leader lease. */
  leader = false;
  private leaderTimer?: NodeJS.Timeout;
  rollouts!: RolloutsService;
  /** Where devices reach the hub's HTTP API (set when HTTP listens, or config publicUrl). */
  publicUrl: string;
  broker!: BrokerPort;
  sync!: SyncService;
  ingest!: IngestService;
  analyzer!: FaceAnalyzer;
  threshold = 0.32;
  private retentionTimer?: NodeJS.Timeout;

  private constructor(
    readonly config: HubConfig,
    readonly store: HubStore,
    readonly log: (msg: string) => void,
  ) {
    this.keys = store.keys;
    this.subjects = store.subjects;
    this.galleries = store.galleries;
    this.devices = store.devices;
    this.events = store.events;
    this.models = store.models;
    this.rolloutsRepo = store.rollouts;
    this.crops = store.crops;
    this.publicUrl = config.publicUrl ?? `http://${config.host}:${config.port}`;
    this.registry = new ModelsService(this.models, loadSigningKey(config.dataDir), config.dataDir, () => this.publicUrl, log);
  }

  /** Only the store: enough for `facefleet hub create-key`. */
  static async openStore(config: HubConfig, log: (msg: string) => void = () => undefined): Promise<Hub> {
    mkdirSync(config.dataDir, { recursive: true });
    return new Hub(config, await openStore(config, cropKey(config.dataDir), log), log);
  }

  static async start(config: HubConfig, log: (msg: string) => void): Promise<Hub> {
    const hub = await Hub.openStore(config, log);
    try {
      hub.analyzer = await FaceAnalyzer.open({
        threads: config.threads,
        ...(config.detector !== undefined ? { detector: config.detector } : {}),
        ...(config.embedder !== undefined ? { embedder: config.embedder } : {}),
      });
      hub.threshold = findModel(hub.analyzer.embedderId).threshold ?? 0.32;
      hub.broker = config.mqttUrl
        ? await ExternalBroker.connect(config.mqttUrl, {
            clientId: `facefleet-hub-${hub.replicaId}`,
            shareGroup: config.mqttShareGroup,
            ...(config.mqttUsername ? { username: config.mqttUsername } : {}),
            ...(config.mqttPassword ? { password: config.mqttPassword } : {}),
          })
        : await EmbeddedBroker.start(config.mqttPort, config.mqttHost, { verify: (id, s) => hub.devices.verify(id, s), galleries: (id) => hub.devices.galleries(id) }, log, config.mqttTlsCert !== undefined && config.mqttTlsKey !== undefined ? { cert: config.mqttTlsCert, key: config.mqttTlsKey } : undefined);
      await hub.registry.registerBuiltins();
      hub.sync = new SyncService(hub.broker, hub.galleries, hub.subjects, hub.devices, log, config.syncPartBytes, (id) => hub.deviceModels(id));
      hub.rollouts = new RolloutsService(hub.rolloutsRepo, hub.models, hub.registry, hub.devices, {
        publishConfig: (id) => hub.sync.publishConfig(id),
        reembed: (modelId) => hub.reembed(modelId),
        isOnline: async (id) => (await hub.devices.get(id))?.online === true,
        leads: () => hub.leader,
        log,
      });
      hub.ingest = new IngestService(hub.broker, hub.devices, hub.events, hub.sync, log, hub.rollouts);
      await hub.ingest.start();
      await hub.sync.publishAll();
      await hub.lead();
      hub.leaderTimer = setInterval(() => void hub.lead(), LEADER_TTL_MS / 3);
      if (hub.leader) await hub.purge();
      hub.rollouts.start();
      hub.retentionTimer = setInterval(() => void (hub.leader ? hub.purge() : Promise.resolve()).catch((e: Error) => log(`retention: ${e.message}`)), 60_000);
    } catch (err) {
      await hub.close();
      throw err;
    }
    return hub;
  }

  /** Take or renew the leader lease; a store error counts as not leading until the next try. */
  private async lead(): Promise<void> {
    try {
      const was = this.leader;
      this.leader = await this.store.leases.acquire('leader', this.replicaId, LEADER_TTL_MS);
      if (this.leader !== was) this.log(`${this.leader ? 'leading' : 'no longer leading'} (replica ${this.replicaId}): rollout waves, retention and log compaction run on the leader`);
    } catch (err) {
      this.leader = false;
      this.log(`leader lease: ${(err as Error).message}`);
    }
  }

  /**
   * Leader housekeeping: subjects past their delete-after date are erased (everywhere), old events
   * purged, and gallery logs compacted (entries SNAPSHOT_AFTER below a head are never served: a
   * device that far behind gets a snapshot), so the log of a busy gallery does not grow forever
   * and erased subjects' ids do not linger in it.
   */
  async purge(): Promise<void> {
    for (const id of await this.subjects.expired(new Date())) {
      const heads = await this.galleries.eraseSubject(id); // undefined: erased meanwhile
      if (heads) await this.sync.announce(heads);
    }
    if (this.config.eventRetentionDays > 0) await this.events.purgeOlderThan(new Date(Date.now() - this.config.eventRetentionDays * 86_400_000).toISOString());
    const compacted = await this.galleries.compactLogs(SNAPSHOT_AFTER);
    if (compacted > 0) this.log(`compacted ${compacted} gallery log entries (more than ${SNAPSHOT_AFTER} below their heads)`);
  }

  async subject(id: string) {
    const s = await this.subjects.get(id);
    if (!s) throw new NotFoundError(`no subject with id ${id}`);
    return { ...s, galleries: await this.galleries.galleriesOf(id) };
  }

  /** Erasure: templates gone here, and a delete in every gallery's log (one transaction) so every device drops them. */
  async deleteSubject(id: string): Promise<void> {
    const heads = await this.galleries.eraseSubject(id);
    if (heads === undefined) throw new NotFoundError(`no subject with id ${id}`);
    await this.sync.announce(heads);
  }

  async enrolFaces(subjectId: string, files: readonly { name: string; bytes: Uint8Array }[]): Promise<{ file: string; status: FaceStatus; reason?: string; templateId?: string }[]> {
    await this.subject(subjectId);
    const images: RgbImage[] = [];
    for (const f of files) {
      try {
        images.push(await this.analyzer.decode(f.bytes));
      } catch (err) {
        if (err instanceof DecodeError) throw new DecodeError(`${f.name}: ${err.message}`);
        throw err;
      }
    }
    const results: { file: string; status: FaceStatus; reason?: string; templateId?: string }[] = [];
    let added = 0;
    for (const [i, f] of files.entries()) {
      const faces = await this.analyzer.detect(images[i]!);
      const face: DetectedFace | undefined = faces[0] ?? (await this.analyzer.largestFace(images[i]!));
      if (!face) {
        results.push({ file: f.name, status: 'noFace', reason: 'no face found' });
        continue;
      }
      if (faces.length > 1) {
        results.push({ file: f.name, status: 'multipleFaces', reason: `${faces.length} faces found; enrol images showing only this person` });
        continue;
      }
      const size = Math.min(face.box.width, face.box.height);
      if (size < MIN_ENROL_FACE_PX || face.quality.score < QUALITY_MIN_ENROL) {
        results.push({ file: f.name, status: 'lowQuality', reason: `face ${Math.round(size)} px, quality ${face.quality.score} (need ${MIN_ENROL_FACE_PX} px and ${QUALITY_MIN_ENROL})` });
        continue;
      }
      const [e] = await this.analyzer.embed([face]);
      const sourceSha256 = createHash('sha256').update(f.bytes).digest('hex');
      const t = await this.subjects.addTemplate({ subjectId, modelId: e!.embedding.modelId, vector: e!.embedding.vector, quality: face.quality.score, sourceSha256 });
      if (this.config.keepFaceCrops) await this.crops.put({ subjectId, sourceSha256, width: face.aligned.width, height: face.aligned.height, data: face.aligned.data });
      if (t.added) added++;
      results.push({ file: f.name, status: 'ok', templateId: t.id, ...(t.added ? {} : { reason: 'already enrolled' }) });
    }
    if (added > 0) await this.sync.changed(subjectId, 'upsert', await this.galleries.galleriesOf(subjectId));
    return results;
  }

  async addToGallery(galleryId: string, subjectId: string): Promise<void> {
    const g = await this.galleries.get(galleryId);
    if (!g) throw new NotFoundError(`no gallery with id ${galleryId}`);
    if (g.isDefault) throw new ConflictError('the default gallery holds every subject already');
    await this.subject(subjectId);
    const seq = await this.galleries.addMember(galleryId, subjectId);
    if (seq !== null) await this.sync.announce([{ galleryId, seq }]);
  }

  async removeFromGallery(galleryId: string, subjectId: string): Promise<void> {
    const g = await this.galleries.get(galleryId);
    if (!g) throw new NotFoundError(`no gallery with id ${galleryId}`);
    if (g.isDefault) throw new ConflictError('the default gallery holds every subject; delete the subject instead');
    const seq = await this.galleries.removeMember(galleryId, subjectId);
    if (seq !== null) await this.sync.announce([{ galleryId, seq }]);
  }

  async deviceStatus(id: string) {
    const d = await this.devices.get(id);
    if (!d) throw new NotFoundError(`no device with id ${id}`);
    const seqs = await this.devices.seqs(id);
    const galleries = [];
    for (const g of await this.devices.galleries(id)) galleries.push({ id: g, seq: seqs[g] ?? 0, headSeq: await this.galleries.head(g) });
    return { ...d, revoked: d.revokedAt !== null, galleries, synced: galleries.every((g) => g.seq >= g.headSeq) };
  }

  async assignGalleries(deviceId: string, galleryIds: readonly string[]): Promise<void> {
    await this.deviceStatus(deviceId);
    for (const g of galleryIds) if (!(await this.galleries.get(g))) throw new NotFoundError(`no gallery with id ${g}`);
    await this.devices.setGalleries(deviceId, galleryIds);
    await this.sync.publishConfig(deviceId);
  }

  async revokeDevice(id: string): Promise<void> {
    if (!(await this.devices.revoke(id))) {
      await this.deviceStatus(id);
      throw new ConflictError(`device ${id} is already revoked`);
    }
    this.broker.disconnect(id);
  }

  /** Cloud recognition: every face of an image against a gallery (default: all subjects). */
  async recognize(bytes: Uint8Array, galleryId = DEFAULT_GALLERY, top = 5) {
    if (!(await this.galleries.get(galleryId))) throw new NotFoundError(`no gallery with id ${galleryId}`);
    const image = await this.analyzer.decode(bytes);
    const faces = await this.analyzer.analyse(image);
    const index = await this.searchIndex(galleryId);
    const decisions = assignUnique(faces.map((f) => decide(index.search(f.embedding.vector, top * 4), this.threshold, top)), this.threshold);
    const names = await this.subjects.names([...new Set(decisions.flatMap((d) => d.candidates.map((c) => c.subjectId)))]);
    const name = (id: string): string => names.get(id) ?? id;
    return {
      image: { width: image.width, height: image.height },
      model: this.analyzer.embedderId,
      threshold: this.threshold,
      faces: faces.map((f, i) => {
        const d = decisions[i]!;
        return {
          box: f.box,
          score: f.score,
          subjectId: d.kind === 'match' ? d.subjectId : null,
          subject: d.kind === 'match' ? name(d.subjectId) : null,
          similarity: d.similarity,
          candidates: d.candidates.map((c) => ({ subjectId: c.subjectId, subject: name(c.subjectId), similarity: c.similarity })),
        };
      }),
    };
  }

  /** The models a device is assigned, as signed references, for its retained config. */
  async deviceModels(deviceId: string): Promise<{ models?: { detector?: ModelRef; embedder?: ModelRef }; rolloutId: string | null; rollouts: { detector?: string | null; embedder?: string | null }; signingKey: string }> {
    const assigned = await this.models.assigned(deviceId);
    const models: { detector?: ModelRef; embedder?: ModelRef } = {};
    const rollouts: { detector?: string | null; embedder?: string | null } = {};
    let rolloutId: string | null = null;
    for (const kind of ['detector', 'embedder'] as const) {
      const a = assigned[kind];
      if (!a) continue;
      models[kind] = await this.registry.ref(a.modelId);
      rollouts[kind] = a.rolloutId ?? null;
      rolloutId = a.rolloutId ?? rolloutId;
    }
    return { ...(Object.keys(models).length > 0 ? { models } : {}), rolloutId, rollouts, signingKey: this.registry.publicKeyPem };
  }

  /**
   * Before devices switch to embedder `modelId`: every template of another embedder gets one of
   * `modelId`, made from the kept face crop of the same source image, and the galleries' logs say
   * so, so devices hold both until they switch. Refused, with what to do, without the crops.
   */
  async reembed(modelId: string): Promise<void> {
    const row = await this.registry.get(modelId);
    const others = await this.subjects.templateModelsExcept(modelId);
    const { templates, missing } = await this.crops.missingFor(others);
    if (templates === 0) return;
    if (missing > 0) {
      throw new ConflictError(
        `cannot switch devices to embedder ${modelId}: ${missing} of ${templates} templates have no kept face crop to re-embed from` +
          (this.config.keepFaceCrops ? '' : ' (keepFaceCrops is off in the hub config)') +
          '; templates are valid only for the model that made them, so those subjects must be re-enrolled (with keepFaceCrops on) first',
      );
    }
    const started = Date.now();
    const analyzer = await FaceAnalyzer.open({ threads: this.config.threads, files: { embedder: { entry: entryOf(row), path: row.path } } });
    const touched = new Set<string>();
    try {
      const have = new Set((await this.subjects.templateSources(modelId)).map((r) => `${r.subjectId}\u0000${r.sourceSha256}`));
      for (const src of await this.crops.sources()) {
        if (have.has(`${src.subjectId}\u0000${src.sourceSha256}`)) continue;
        const crop = await this.crops.get(src.subjectId, src.sourceSha256);
        if (crop === undefined) continue; // erased meanwhile
        const [e] = await analyzer.embedder.embed([{ width: crop.width, height: crop.height, data: crop.data }]);
        await this.subjects.addTemplate({ subjectId: src.subjectId, modelId, vector: e!.vector, quality: 1, sourceSha256: src.sourceSha256 });
        touched.add(src.subjectId);
      }
    } finally {
      await analyzer.close();
    }
    for (const id of touched) await this.sync.changed(id, 'upsert', await this.galleries.galleriesOf(id));
    this.log(`models: re-embedded ${touched.size} subjects with ${modelId} in ${Date.now() - started} ms`);
  }

  private readonly indexes = new Map<string, { head: number; index: FlatIndex }>();

  /** A gallery's templates of the current embedder, in memory while the gallery's head stays put. */
  private async searchIndex(galleryId: string): Promise<FlatIndex> {
    const head = await this.galleries.head(galleryId);
    const cached = this.indexes.get(galleryId);
    if (cached?.head === head) return cached.index;
    const index = new FlatIndex(this.analyzer.embedderId);
    for (const t of await this.subjects.templates(await this.galleries.members(galleryId))) if (t.modelId === this.analyzer.embedderId) index.add({ templateId: t.id, subjectId: t.subjectId }, t.vector);
    this.indexes.set(galleryId, { head, index });
    return index;
  }

  async verify(a: Uint8Array, b: Uint8Array) {
    const embed = async (bytes: Uint8Array, label: string) => {
      const face = await this.analyzer.largestFace(await this.analyzer.decode(bytes));
      if (!face) throw new FacefleetError('noFace', `${label}: no face found`);
      return (await this.analyzer.embed([face]))[0]!.embedding.vector;
    };
    const similarity = cosine(await embed(a, 'imageA'), await embed(b, 'imageB'));
    return { similarity, match: similarity >= this.threshold, threshold: this.threshold, model: this.analyzer.embedderId };
  }

  async close(): Promise<void> {
    clearInterval(this.retentionTimer);
    clearInterval(this.leaderTimer);
    this.rollouts?.stop();
    this.sync?.close();
    await this.broker?.close().catch(() => undefined);
    await this.analyzer?.close().catch(() => undefined);
    // Hand the lead over at once rather than after the lease expires.
    if (this.leader) await this.store.leases.release('leader', this.replicaId).catch(() => undefined);
    await this.store.close();
  }
}
