import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assignUnique, decide, FlatIndex } from '@facefleet/gallery';
import { ConfigError, ConflictError, DecodeError, FacefleetError, NotFoundError, type ModelRef } from '@facefleet/protocol';
import { cosine, FaceAnalyzer, findModel, QUALITY_MIN_ENROL, type DetectedFace, type RgbImage } from '@facefleet/vision';
import { IngestService } from './ingest.service.js';
import { EmbeddedBroker, ExternalBroker, type BrokerPort } from './mqtt/broker.js';
import type { HubConfig } from './config.js';
import { DevicesRepository } from './store/devices.repository.js';
import { EventsRepository } from './store/events.repository.js';
import { DEFAULT_GALLERY, GalleriesRepository } from './store/galleries.repository.js';
import { openHubDb, type HubDb } from './store/hub-db.js';
import { KeysRepository } from './store/keys.repository.js';
import { SubjectsRepository } from './store/subjects.repository.js';
import { entryOf, loadSigningKey, ModelsService } from './models.service.js';
import { RolloutsService } from './rollouts.service.js';
import { CropsRepository } from './store/crops.repository.js';
import { ModelsRepository } from './store/models.repository.js';
import { RolloutsRepository } from './store/rollouts.repository.js';
import { SyncService } from './sync.service.js';

export type FaceStatus = 'ok' | 'noFace' | 'multipleFaces' | 'lowQuality';

/** Faces smaller than this (shorter box side, px) are refused for enrolment as low quality. */
const MIN_ENROL_FACE_PX = 40;

/** The key that encrypts kept face crops: FACEFLEET_HUB_CROP_KEY (base64, 32 bytes), else <dataDir>/crop-key made once. */
function cropKey(dataDir: string): Buffer {
  const env = process.env.FACEFLEET_HUB_CROP_KEY;
  if (env !== undefined && env !== '') {
    const key = Buffer.from(env, 'base64');
    if (key.length !== 32) throw new ConfigError('FACEFLEET_HUB_CROP_KEY must be 32 bytes in base64');
    return key;
  }
  const path = join(dataDir, 'crop-key');
  if (!existsSync(path)) {
    writeFileSync(path, randomBytes(32).toString('base64'), { mode: 0o600 });
    chmodSync(path, 0o600);
  }
  return Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
}

/**
 * The hub's composition root and its domain services, independent of HTTP: repositories over
 * one SQLite file, the broker (embedded aedes or external), sync, ingestion, and the models.
 */
export class Hub {
  readonly keys: KeysRepository;
  readonly subjects: SubjectsRepository;
  readonly galleries: GalleriesRepository;
  readonly devices: DevicesRepository;
  readonly events: EventsRepository;
  readonly models: ModelsRepository;
  readonly rolloutsRepo: RolloutsRepository;
  readonly crops: CropsRepository;
  readonly registry: ModelsService;
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
    readonly db: HubDb,
    readonly log: (msg: string) => void,
  ) {
    this.keys = new KeysRepository(db);
    this.subjects = new SubjectsRepository(db);
    this.galleries = new GalleriesRepository(db);
    this.devices = new DevicesRepository(db);
    this.events = new EventsRepository(db);
    this.models = new ModelsRepository(db);
    this.rolloutsRepo = new RolloutsRepository(db);
    this.crops = new CropsRepository(db, cropKey(config.dataDir));
    this.publicUrl = config.publicUrl ?? `http://${config.host}:${config.port}`;
    this.registry = new ModelsService(this.models, loadSigningKey(config.dataDir), config.dataDir, () => this.publicUrl, log);
  }

  /** Only the store: enough for `facefleet hub create-key`. */
  static openStore(config: HubConfig, log: (msg: string) => void = () => undefined): Hub {
    mkdirSync(config.dataDir, { recursive: true });
    return new Hub(config, openHubDb(join(config.dataDir, 'hub.db')), log);
  }

  static async start(config: HubConfig, log: (msg: string) => void): Promise<Hub> {
    const hub = Hub.openStore(config, log);
    try {
      hub.analyzer = await FaceAnalyzer.open({
        threads: config.threads,
        ...(config.detector !== undefined ? { detector: config.detector } : {}),
        ...(config.embedder !== undefined ? { embedder: config.embedder } : {}),
      });
      hub.threshold = findModel(hub.analyzer.embedderId).threshold ?? 0.32;
      hub.broker = config.mqttUrl
        ? await ExternalBroker.connect(config.mqttUrl, { clientId: `facefleet-hub-${process.pid}`, ...(config.mqttUsername ? { username: config.mqttUsername } : {}), ...(config.mqttPassword ? { password: config.mqttPassword } : {}) })
        : await EmbeddedBroker.start(config.mqttPort, config.mqttHost, { verify: (id, s) => hub.devices.verify(id, s), galleries: (id) => hub.devices.galleries(id) }, log, config.mqttTlsCert !== undefined && config.mqttTlsKey !== undefined ? { cert: config.mqttTlsCert, key: config.mqttTlsKey } : undefined);
      hub.registry.registerBuiltins();
      hub.sync = new SyncService(hub.broker, hub.galleries, hub.subjects, hub.devices, log, config.syncPartBytes, (id) => hub.deviceModels(id));
      hub.rollouts = new RolloutsService(hub.rolloutsRepo, hub.models, hub.registry, hub.devices, {
        publishConfig: (id) => hub.sync.publishConfig(id),
        reembed: (modelId) => hub.reembed(modelId),
        isOnline: (id) => hub.devices.get(id)?.online === true,
        log,
      });
      hub.ingest = new IngestService(hub.broker, hub.devices, hub.events, hub.sync, log, hub.rollouts);
      await hub.ingest.start();
      await hub.sync.publishAll();
      await hub.purge();
      hub.rollouts.start();
      hub.retentionTimer = setInterval(() => void hub.purge().catch((e: Error) => log(`retention: ${e.message}`)), 60_000);
    } catch (err) {
      await hub.close();
      throw err;
    }
    return hub;
  }

  /** Subjects past their delete-after date are erased (everywhere); old events are purged. */
  async purge(): Promise<void> {
    for (const id of this.subjects.expired(new Date())) await this.deleteSubject(id);
    if (this.config.eventRetentionDays > 0) this.events.purgeOlderThan(new Date(Date.now() - this.config.eventRetentionDays * 86_400_000).toISOString());
  }

  subject(id: string) {
    const s = this.subjects.get(id);
    if (!s) throw new NotFoundError(`no subject with id ${id}`);
    return { ...s, galleries: this.galleries.galleriesOf(id) };
  }

  /** Erasure: templates gone here, and a delete in every gallery's log so every device drops them. */
  async deleteSubject(id: string): Promise<void> {
    if (!this.subjects.get(id)) throw new NotFoundError(`no subject with id ${id}`);
    const galleries = this.galleries.galleriesOf(id);
    this.galleries.removeSubjectEverywhere(id);
    this.subjects.delete(id);
    await this.sync.changed(id, 'delete', galleries);
  }

  async enrolFaces(subjectId: string, files: readonly { name: string; bytes: Uint8Array }[]): Promise<{ file: string; status: FaceStatus; reason?: string; templateId?: string }[]> {
    this.subject(subjectId);
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
      const t = this.subjects.addTemplate({ subjectId, modelId: e!.embedding.modelId, vector: e!.embedding.vector, quality: face.quality.score, sourceSha256 });
      if (this.config.keepFaceCrops) this.crops.put({ subjectId, sourceSha256, width: face.aligned.width, height: face.aligned.height, data: face.aligned.data });
      if (t.added) added++;
      results.push({ file: f.name, status: 'ok', templateId: t.id, ...(t.added ? {} : { reason: 'already enrolled' }) });
    }
    if (added > 0) await this.sync.changed(subjectId, 'upsert', this.galleries.galleriesOf(subjectId));
    return results;
  }

  async addToGallery(galleryId: string, subjectId: string): Promise<void> {
    const g = this.galleries.get(galleryId);
    if (!g) throw new NotFoundError(`no gallery with id ${galleryId}`);
    if (g.isDefault) throw new ConflictError('the default gallery holds every subject already');
    this.subject(subjectId);
    if (this.galleries.addMember(galleryId, subjectId)) await this.sync.changed(subjectId, 'upsert', [galleryId]);
  }

  async removeFromGallery(galleryId: string, subjectId: string): Promise<void> {
    const g = this.galleries.get(galleryId);
    if (!g) throw new NotFoundError(`no gallery with id ${galleryId}`);
    if (g.isDefault) throw new ConflictError('the default gallery holds every subject; delete the subject instead');
    if (this.galleries.removeMember(galleryId, subjectId)) await this.sync.changed(subjectId, 'delete', [galleryId]);
  }

  deviceStatus(id: string) {
    const d = this.devices.get(id);
    if (!d) throw new NotFoundError(`no device with id ${id}`);
    const seqs = this.devices.seqs(id);
    const galleries = this.devices.galleries(id).map((g) => ({ id: g, seq: seqs[g] ?? 0, headSeq: this.galleries.head(g) }));
    return { ...d, revoked: d.revokedAt !== null, galleries, synced: galleries.every((g) => g.seq >= g.headSeq) };
  }

  async assignGalleries(deviceId: string, galleryIds: readonly string[]): Promise<void> {
    this.deviceStatus(deviceId);
    for (const g of galleryIds) if (!this.galleries.get(g)) throw new NotFoundError(`no gallery with id ${g}`);
    this.devices.setGalleries(deviceId, galleryIds);
    await this.sync.publishConfig(deviceId);
  }

  revokeDevice(id: string): void {
    if (!this.devices.revoke(id)) {
      this.deviceStatus(id);
      throw new ConflictError(`device ${id} is already revoked`);
    }
    this.broker.disconnect(id);
  }

  /** Cloud recognition: every face of an image against a gallery (default: all subjects). */
  async recognize(bytes: Uint8Array, galleryId = DEFAULT_GALLERY, top = 5) {
    if (!this.galleries.get(galleryId)) throw new NotFoundError(`no gallery with id ${galleryId}`);
    const image = await this.analyzer.decode(bytes);
    const faces = await this.analyzer.analyse(image);
    const index = this.searchIndex(galleryId);
    const decisions = assignUnique(faces.map((f) => decide(index.search(f.embedding.vector, top * 4), this.threshold, top)), this.threshold);
    const name = (id: string): string => this.subjects.get(id)?.name ?? id;
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
    const assigned = this.models.assigned(deviceId);
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
    const row = this.registry.get(modelId);
    const others = (this.db.prepare('SELECT DISTINCT model_id AS m FROM templates WHERE model_id != ?').all(modelId) as { m: string }[]).map((r) => r.m);
    const { templates, missing } = this.crops.missingFor(others);
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
      const have = new Set((this.db.prepare('SELECT subject_id || char(0) || source_sha256 AS k FROM templates WHERE model_id = ?').all(modelId) as { k: string }[]).map((r) => r.k));
      for (const src of this.crops.sources()) {
        if (have.has(`${src.subjectId}\u0000${src.sourceSha256}`)) continue;
        const crop = this.crops.get(src.subjectId, src.sourceSha256)!;
        const [e] = await analyzer.embedder.embed([{ width: crop.width, height: crop.height, data: crop.data }]);
        this.subjects.addTemplate({ subjectId: src.subjectId, modelId, vector: e!.vector, quality: 1, sourceSha256: src.sourceSha256 });
        touched.add(src.subjectId);
      }
    } finally {
      await analyzer.close();
    }
    for (const id of touched) await this.sync.changed(id, 'upsert', this.galleries.galleriesOf(id));
    this.log(`models: re-embedded ${touched.size} subjects with ${modelId} in ${Date.now() - started} ms`);
  }

  private readonly indexes = new Map<string, { head: number; index: FlatIndex }>();

  /** A gallery's templates of the current embedder, in memory while the gallery's head stays put. */
  private searchIndex(galleryId: string): FlatIndex {
    const head = this.galleries.head(galleryId);
    const cached = this.indexes.get(galleryId);
    if (cached?.head === head) return cached.index;
    const index = new FlatIndex(this.analyzer.embedderId);
    for (const t of this.subjects.templates(this.galleries.members(galleryId))) if (t.modelId === this.analyzer.embedderId) index.add({ templateId: t.id, subjectId: t.subjectId }, t.vector);
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
    this.rollouts?.stop();
    this.sync?.close();
    await this.broker?.close().catch(() => undefined);
    await this.analyzer?.close().catch(() => undefined);
    if (this.db.open) this.db.close();
  }
}
