import type { EventMessage, ModelManifestInput, SelfTestSpec } from '@facefleet/protocol';

/**
 * The hub's storage seam. Every repository is asynchronous so one interface serves SQLite
 * (better-sqlite3, one process) and PostgreSQL (a pool shared by several hub replicas). Each
 * method is one atomic unit: where it writes more than one row it does so in one transaction.
 * Both implementations pass the same contract suite (store.contract.ts).
 */
export interface HubStore {
  readonly engine: 'sqlite' | 'postgres';
  /** Where the data lives, for logs (a file path, or a URL without its password). */
  readonly location: string;
  readonly keys: KeysRepo;
  readonly subjects: SubjectsRepo;
  readonly galleries: GalleriesRepo;
  readonly devices: DevicesRepo;
  readonly events: EventsRepo;
  readonly models: ModelsRepo;
  readonly rollouts: RolloutsRepo;
  readonly crops: CropsRepo;
  readonly leases: LeasesRepo;
  close(): Promise<void>;
}

export type Role = 'admin' | 'operator' | 'viewer';
export const ROLES: readonly Role[] = ['admin', 'operator', 'viewer'];

export interface KeysRepo {
  /** A new key (shown once; only its sha256 is kept). */
  create(role: Role): Promise<{ id: string; key: string; role: Role }>;
  find(key: string): Promise<{ id: string; role: Role } | undefined>;
}

export interface SubjectRow {
  id: string;
  name: string;
  consentAt: string | null;
  purpose: string | null;
  deleteAfter: string | null;
  createdAt: string;
  updatedAt: string;
  templates: number;
}

export interface TemplateRow {
  id: string;
  subjectId: string;
  modelId: string;
  vector: Float32Array;
  quality: number | null;
}

export interface SubjectPatch {
  name?: string;
  consentAt?: string | null;
  purpose?: string | null;
  deleteAfter?: string | null;
}

export interface SubjectsRepo {
  create(s: { name: string; consentAt?: string | null; purpose?: string | null; deleteAfter?: string | null }): Promise<SubjectRow>;
  get(id: string): Promise<SubjectRow | undefined>;
  /** Page by name then id; `after` is the last row of the previous page. */
  list(q: { search?: string; limit: number; after?: { name: string; id: string } }): Promise<SubjectRow[]>;
  update(id: string, patch: SubjectPatch): Promise<SubjectRow | undefined>;
  /** Subjects whose delete-after date has passed. */
  expired(now: Date): Promise<string[]>;
  addTemplate(t: { subjectId: string; modelId: string; vector: Float32Array; quality: number; sourceSha256: string }): Promise<{ id: string; added: boolean }>;
  /** Templates of these subjects (any number of ids). */
  templates(subjectIds: readonly string[]): Promise<TemplateRow[]>;
  /** Names of these subjects by id (absent ids are left out). */
  names(subjectIds: readonly string[]): Promise<Map<string, string>>;
  count(): Promise<{ subjects: number; templates: number }>;
  /** Embedders that made templates, other than `modelId`. */
  templateModelsExcept(modelId: string): Promise<string[]>;
  /** (subject, source image) pairs that have a template of `modelId`. */
  templateSources(modelId: string): Promise<{ subjectId: string; sourceSha256: string }[]>;
}

export interface GalleryRow {
  id: string;
  name: string;
  isDefault: boolean;
  headSeq: number;
  createdAt: string;
}

export interface LogEntry {
  seq: number;
  op: 'upsert' | 'delete';
  subjectId: string;
}

export const DEFAULT_GALLERY = 'default';

/**
 * Galleries and their ordered change logs. The default gallery holds every subject; others hold
 * their members. Each membership or content change appends (gallery, seq, op, subject).
 */
export interface GalleriesRepo {
  create(name: string): Promise<GalleryRow>;
  get(id: string): Promise<GalleryRow | undefined>;
  list(): Promise<GalleryRow[]>;
  delete(id: string): Promise<boolean>;
  /** Galleries a subject belongs to (the default one always). */
  galleriesOf(subjectId: string): Promise<string[]>;
  members(galleryId: string): Promise<string[]>;
  /** Add a member and log it; the new head, or null when it was a member already. */
  addMember(galleryId: string, subjectId: string): Promise<number | null>;
  /** Remove a member and log it; the new head, or null when it was not a member. */
  removeMember(galleryId: string, subjectId: string): Promise<number | null>;
  /** Append one change to each gallery's log (one transaction); the new heads. */
  append(galleryIds: readonly string[], op: LogEntry['op'], subjectId: string): Promise<{ galleryId: string; seq: number }[]>;
  /**
   * Erasure in one transaction: the subject, its templates, crops and memberships are deleted
   * and a delete is logged in every gallery it was in. The new heads, or undefined if absent.
   */
  eraseSubject(subjectId: string): Promise<{ galleryId: string; seq: number }[] | undefined>;
  /** Log entries after `seq`, oldest first; entries compacted away are simply absent (a gap after `seq`). */
  since(galleryId: string, seq: number, limit: number): Promise<LogEntry[]>;
  head(galleryId: string): Promise<number>;
  /**
   * Log compaction: in every gallery, delete the entries `keep` or more below its head (a device
   * that far behind gets a snapshot, never those entries). The number of entries deleted.
   */
  compactLogs(keep: number): Promise<number>;
}

export interface DeviceRow {
  id: string;
  name: string;
  createdAt: string;
  revokedAt: string | null;
  online: boolean;
  lastSeen: string | null;
  agentVersion: string | null;
  models: { detector: string; embedder: string } | null;
  outboxDepth: number | null;
}

export interface DevicesRepo {
  /** A new device and its secret (shown once; only hashes are kept). */
  create(name: string): Promise<{ device: DeviceRow; secret: string }>;
  get(id: string): Promise<DeviceRow | undefined>;
  list(): Promise<DeviceRow[]>;
  /** True when the device exists, is not revoked, and the secret matches (constant time). */
  verify(id: string, secret: string): Promise<boolean>;
  rename(id: string, name: string): Promise<void>;
  revoke(id: string): Promise<boolean>;
  setOnline(id: string, online: boolean, agentVersion?: string): Promise<void>;
  /** Status report: models, outbox depth, version, and the gallery sequences it holds. */
  setStatus(id: string, s: { models: { detector: string; embedder: string }; outboxDepth: number; agentVersion: string; galleries?: Record<string, number> }): Promise<void>;
  /** Assigned galleries; a device with no explicit assignment gets the default gallery. */
  galleries(id: string): Promise<string[]>;
  setGalleries(id: string, galleryIds: readonly string[]): Promise<void>;
  /** Live (not revoked) devices holding a gallery. */
  devicesWithGallery(galleryId: string): Promise<string[]>;
  seqs(id: string): Promise<Record<string, number>>;
  /** Live devices with what an external broker needs: id, Mosquitto password hash, galleries. */
  brokerAccounts(): Promise<{ id: string; brokerHash: string | null; galleries: string[] }[]>;
}

export interface EventRow {
  id: string;
  deviceId: string;
  type: 'recognition' | 'unknown';
  subject: string | null;
  subjectId: string | null;
  similarity: number;
  at: string;
  receivedAt: string;
}

export interface EventFilter {
  device?: string;
  subject?: string;
  type?: string;
  from?: string;
  to?: string;
}

/** Events, stored once per id (agents resend until acknowledged). */
export interface EventsRepo {
  /** Store a batch in one transaction; per event: stored now (true), or already there (false). */
  insertMany(events: readonly EventMessage[]): Promise<boolean[]>;
  /** Newest first; `after` is the (at, id) of the last row of the previous page. */
  list(f: EventFilter, limit: number, after?: { at: string; id: string }): Promise<EventRow[]>;
  count(): Promise<number>;
  purgeOlderThan(cutoff: string): Promise<number>;
}

export interface ModelRow {
  id: string;
  kind: 'detector' | 'embedder' | 'liveness';
  sha256: string;
  bytes: number;
  manifest: ModelManifestInput;
  selfTest: SelfTestSpec | null;
  keyId: string | null;
  signature: string | null;
  /** `manifest`: from the project's models/manifest.json; `upload`: registered through the API. */
  source: 'manifest' | 'upload';
  path: string;
  createdAt: string;
}

/** The model registry, and which model of each kind every device should run. */
export interface ModelsRepo {
  /** Insert; false when a model with this id exists (another replica registered it first). */
  insert(m: Omit<ModelRow, 'createdAt'>): Promise<boolean>;
  get(id: string): Promise<ModelRow | undefined>;
  list(): Promise<ModelRow[]>;
  setSigned(id: string, selfTest: SelfTestSpec, keyId: string, signature: string): Promise<void>;
  /** The model of each kind a device is assigned (absent kinds: the device runs its own default). */
  assigned(deviceId: string): Promise<Record<string, { modelId: string; rolloutId: string | null }>>;
  assign(deviceId: string, kind: string, modelId: string | null, rolloutId: string | null): Promise<void>;
}

export type RolloutState = 'running' | 'paused' | 'halted' | 'completed' | 'aborted' | 'rolledBack';
/** pending: its wave is not reached; assigned: told, no report yet; then the device's own steps. */
export type RolloutDeviceState = 'pending' | 'assigned' | 'downloading' | 'verifying' | 'testing' | 'active' | 'failed' | 'rolledBack' | 'cancelled';

export interface Gates {
  /** Failed devices / devices of the wave above this halts the rollout (0: any failure halts). */
  maxFailureRate: number;
  /** Seconds a finished wave must stay healthy before the next starts. */
  soakSeconds: number;
  /** Share of a wave's devices (percent) that must run the model before the next wave starts. */
  minHealthyPercent: number;
}

export type RolloutTarget = 'all' | { devices: string[] } | { galleries: string[] };

export interface RolloutRow {
  id: string;
  modelId: string;
  kind: string;
  target: RolloutTarget;
  waves: number[];
  gates: Gates;
  state: RolloutState;
  /** Index of the current wave. */
  wave: number;
  reason: string | null;
  waveDoneAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface RolloutDeviceRow {
  deviceId: string;
  position: number;
  wave: number;
  state: RolloutDeviceState;
  reason: string | null;
  previousModelId: string | null;
  updatedAt: string;
}

export interface RolloutsRepo {
  create(r: { modelId: string; kind: string; target: RolloutTarget; waves: number[]; gates: Gates; devices: { deviceId: string; wave: number; previousModelId: string | null }[] }): Promise<RolloutRow>;
  get(id: string): Promise<RolloutRow | undefined>;
  list(): Promise<RolloutRow[]>;
  /** Rollouts still in charge of their devices (running, paused or halted). */
  open(): Promise<RolloutRow[]>;
  update(id: string, patch: { state?: RolloutState; wave?: number; reason?: string | null; waveDoneAt?: string | null }): Promise<void>;
  devices(id: string): Promise<RolloutDeviceRow[]>;
  setDevice(id: string, deviceId: string, state: RolloutDeviceState, reason?: string | null): Promise<void>;
}

export interface Crop {
  subjectId: string;
  sourceSha256: string;
  width: number;
  height: number;
  data: Uint8Array;
}

export interface CropsRepo {
  put(c: Crop): Promise<void>;
  get(subjectId: string, sourceSha256: string): Promise<Crop | undefined>;
  count(): Promise<number>;
  /** Templates of these models whose source image has no crop (they cannot be re-embedded). */
  missingFor(modelIds: readonly string[]): Promise<{ templates: number; missing: number }>;
  /** Every (subject, source image) with a crop. */
  sources(): Promise<{ subjectId: string; sourceSha256: string }[]>;
}

/**
 * Leases for work that must run on one hub replica at a time (rollout waves, retention purges):
 * a row per name with its holder and expiry, taken when free or expired, renewed by its holder.
 */
export interface LeasesRepo {
  /** Take or renew `name` for `holder` until now + ttlMs; true when `holder` holds it. */
  acquire(name: string, holder: string, ttlMs: number): Promise<boolean>;
  release(name: string, holder: string): Promise<void>;
  holder(name: string): Promise<{ holder: string; expiresAt: string } | undefined>;
}
