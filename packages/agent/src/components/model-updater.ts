import { createPublicKey, type KeyObject } from 'node:crypto';
import { statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import {
  keyIdOf,
  modelRef,
  topics,
  verifyModelSignature,
  type DeviceConfigMessage,
  type ModelRef,
  type ModelReportMessage,
} from '@facefleet/protocol';
import { checkSelfTest, openSession, type FaceAnalyzer } from '@facefleet/vision';
import { DEFAULT_DOWNLOAD_TUNING, downloadModel, DownloadError, redact, type DownloadTuning } from '../adapters/model-download.js';
import { ModelFiles, sha256File } from '../adapters/model-files.js';
import { ModelState, UPDATABLE_KINDS, type UpdatableKind } from '../adapters/model-state.js';
import type { AgentConfig } from '../config.js';
import { assignedModel, openAnalyzer, ownModel, thresholdFor, type RunningModel, type RunningModels } from './running-models.js';

export interface ModelUpdaterDeps {
  config: AgentConfig;
  db: Database.Database;
  /** The models the agent started with (what the pipeline's analyzer runs). */
  running: RunningModels;
  gallery: { subjectsWithoutModel(modelId: string): string[] };
  /** Publish on the device's topics (QoS 1; dropped while offline: the last report per kind is resent on connect). */
  publish: (topic: string, payload: string) => void;
  /** Ask the hub for every assigned gallery from sequence 0. */
  requestSnapshot: () => void;
  /** Put this analyzer in service; resolves with the one it replaced once no frame uses it any more. */
  swap: (analyzer: FaceAnalyzer, threshold: number, models: RunningModels) => Promise<FaceAnalyzer>;
  log: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void };
  download?: Partial<DownloadTuning>;
  /** How often the gallery is checked while an embedder update waits for its templates. */
  galleryPollMs?: number;
}

type Assignment = Pick<DeviceConfigMessage, 'models' | 'rolloutId' | 'rollouts'>;

/** A step that failed; `permanent` ones are not retried for the same assignment until a restart. */
class UpdateFailure extends Error {
  constructor(
    message: string,
    readonly permanent = true,
  ) {
    super(message);
  }
}

/**
 * The agent's side of fleet model updates (issue 5). The hub's retained config names the
 * detector and embedder a device should run (absent: the agent's own); when that differs from
 * what runs (id and sha256), the updater, one update at a time: checks the reference's Ed25519
 * signature against the trusted key (before any download: a refused reference costs no bandwidth),
 * downloads the file (resumable) unless a file with that content is already here, checks size and
 * sha256, runs the signed self-test in a fresh session, for an embedder checks the gallery holds the
 * new model's templates, opens a new analyzer, swaps it into the pipeline between two frames,
 * closes the old one, and records what runs in agent.db. Each step is reported on
 * `devices/<id>/models`. Any failure leaves the old analyzer running (it never stopped) and is
 * reported once: the same (rollout, kind, sha256) is not tried again until the assignment
 * changes or the agent restarts. Transient download failures are retried on the next delivery.
 */
export class ModelUpdater {
  private models: RunningModels;
  private readonly state: ModelState;
  private readonly files: ModelFiles;
  private pending?: Assignment;
  private latest?: Assignment;
  private loop?: Promise<void>;
  private readonly failed = new Set<string>();
  private readonly lastReport = new Map<UpdatableKind, ModelReportMessage>();
  private readonly abort = new AbortController();
  private readonly refusedInvalid = new Set<string>();
  private keyWarned = false;
  updates = 0;

  constructor(private readonly d: ModelUpdaterDeps) {
    this.models = { ...d.running };
    this.state = new ModelState(d.db);
    this.files = new ModelFiles(d.config.dataDir);
  }

  /** What runs now, per kind. */
  get running(): RunningModels {
    return this.models;
  }

  get busy(): boolean {
    return this.loop !== undefined;
  }

  /** A valid config from the hub: pin its signing key if none is trusted yet, then follow its model assignment. */
  onConfig(config: DeviceConfigMessage): void {
    if (config.signingKey !== undefined) this.considerKey(config.signingKey);
    const assignment: Assignment = { models: config.models, rolloutId: config.rolloutId ?? null, ...(config.rollouts ? { rollouts: config.rollouts } : {}) };
    this.latest = assignment;
    this.pending = assignment;
    this.loop ??= this.drain().finally(() => (this.loop = undefined));
  }

  /** A config that failed validation: a model reference in it is refused (unsigned, malformed), and said so once. */
  onInvalidConfig(payload: Buffer): void {
    let raw: unknown;
    try {
      raw = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    const o = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
    const models = o.models !== null && typeof o.models === 'object' ? (o.models as Record<string, unknown>) : {};
    const perKind = o.rollouts !== null && typeof o.rollouts === 'object' ? (o.rollouts as Record<string, unknown>) : {};
    for (const kind of UPDATABLE_KINDS) {
      const own = perKind[kind];
      const rolloutId = typeof own === 'string' ? own : typeof o.rolloutId === 'string' ? o.rolloutId : null;
      const v = models[kind];
      if (v === undefined) continue;
      const r = modelRef.safeParse(v);
      if (r.success) continue;
      const seen = `${rolloutId}|${kind}|${JSON.stringify(v)}`;
      if (this.refusedInvalid.has(seen)) continue;
      this.refusedInvalid.add(seen);
      const issue = r.error.issues[0];
      const id = v !== null && typeof v === 'object' && typeof (v as { id?: unknown }).id === 'string' ? (v as { id: string }).id : '(unknown)';
      const reason = `refused: invalid model reference (${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'})`;
      this.d.log.warn({ kind, model: id, reason }, 'model assignment refused');
      this.report(rolloutId, kind, id, 'failed', { reason, running: this.models[kind].id });
    }
  }

  /** After a (re)connect: the last report of each kind again (one sent while offline was dropped). */
  onConnected(): void {
    for (const r of this.lastReport.values()) this.d.publish(topics.models(this.d.config.deviceId), JSON.stringify(r));
  }

  /** Resolves when no update runs and none is waiting (tests, orderly stop). */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  async stop(): Promise<void> {
    this.pending = undefined;
    this.abort.abort(new Error('agent stopping'));
    await this.loop?.catch(() => undefined);
  }

  private async drain(): Promise<void> {
    while (this.pending && !this.abort.signal.aborted) {
      const a = this.pending;
      this.pending = undefined;
      for (const kind of UPDATABLE_KINDS) {
        await this.follow(kind, a);
        // A newer assignment arrived meanwhile: it is the whole wanted state; start over with it.
        if (this.pending || this.abort.signal.aborted) break;
      }
    }
  }

  private async follow(kind: UpdatableKind, a: Assignment): Promise<void> {
    const target = a.models?.[kind];
    const current = this.models[kind];
    // Per kind when the hub says so: the other kind's model may come from another rollout.
    const rolloutId = a.rollouts ? (a.rollouts[kind] ?? null) : (a.rolloutId ?? null);
    if (!target) {
      if (current.ref === undefined) return;
      const key = `${rolloutId}|${kind}|own`;
      if (this.failed.has(key)) return;
      const back = await this.run(kind, rolloutId, undefined);
      if (!back.done && back.permanent) this.failed.add(key);
      return;
    }
    // The same model already runs as assigned. (The same file running as the agent's own model
    // still goes through the steps: the hub gets its `active`, and models.active records the reference.)
    if (current.ref !== undefined && current.id === target.id && current.sha256 === target.sha256) return;
    const key = `${rolloutId}|${kind}|${target.id}|${target.sha256}`;
    if (this.failed.has(key)) return;
    const ok = await this.run(kind, rolloutId, target);
    if (!ok.done && ok.permanent) this.failed.add(key);
  }

  /** One update of one kind, to `target` (undefined: back to the agent's own model). */
  private async run(kind: UpdatableKind, rolloutId: string | null, target: ModelRef | undefined): Promise<{ done: boolean; permanent: boolean }> {
    const from = this.models[kind];
    const signal = this.abort.signal;
    let modelId = target?.id ?? '(own)';
    const t0 = Date.now();
    let opened: FaceAnalyzer | undefined;
    try {
      const next = target ? await this.prepare(kind, rolloutId, target) : ownModel(kind, this.d.config);
      modelId = next.id;
      if (!target) this.report(rolloutId, kind, modelId, 'testing');
      if (kind === 'embedder') await this.galleryReady(next.id);
      const models: RunningModels = { ...this.models, [kind]: next };
      opened = await openAnalyzer(models, this.d.config).catch((err: Error) => {
        throw new UpdateFailure(`cannot open the new analyzer: ${err.message.split('\n')[0] ?? ''}`);
      });
      signal.throwIfAborted();
      const old = await this.d.swap(opened, thresholdFor(models.embedder, this.d.config), models);
      opened = undefined;
      this.models = models;
      this.updates++;
      await old.close();
      this.state.recordSwitch(kind, from.ref ?? null, next.ref ?? null);
      this.pruneFiles();
      this.d.log.info({ kind, from: from.id, to: next.id, rolloutId, ms: Date.now() - t0 }, 'model switched');
      this.report(rolloutId, kind, next.id, 'active', { running: next.id });
      return { done: true, permanent: false };
    } catch (err) {
      await opened?.close().catch(() => undefined);
      if (signal.aborted) return { done: false, permanent: false };
      const failure = err instanceof UpdateFailure ? err : new UpdateFailure((err as Error).message.split('\n')[0] ?? String(err));
      this.d.log.warn({ kind, model: modelId, rolloutId, reason: failure.message, permanent: failure.permanent, running: from.id }, 'model update failed: the previous model keeps running');
      this.report(rolloutId, kind, modelId, 'failed', { reason: failure.message, running: from.id });
      return { done: false, permanent: failure.permanent };
    }
  }

  /** Signature, file (found or downloaded), size and sha256, self-test: a model ready to open. */
  private async prepare(kind: UpdatableKind, rolloutId: string | null, ref: ModelRef): Promise<RunningModel> {
    const signal = this.abort.signal;
    if (ref.kind !== kind || ref.manifest.kind !== kind) throw new UpdateFailure(`assigned as the ${kind} but the reference is of kind ${ref.kind}/${ref.manifest.kind}`);
    if (ref.manifest.id !== ref.id) throw new UpdateFailure(`reference id ${ref.id} differs from its manifest id ${ref.manifest.id}`);
    const trusted = this.trustedKeys();
    if (trusted.length === 0) throw new UpdateFailure('no trusted signing key: set models.signingKey, or let the hub send its signingKey');
    const sig = verifyModelSignature(ref, trusted);
    if (!sig.ok) throw new UpdateFailure(`signature refused: ${sig.reason}`);

    let path = this.files.find(ref.sha256);
    if (path === undefined) {
      this.report(rolloutId, kind, ref.id, 'downloading');
      path = this.files.path(ref.sha256);
      await this.download(ref, path);
    }
    this.report(rolloutId, kind, ref.id, 'verifying');
    const size = statSync(path).size;
    if (size !== ref.bytes) {
      this.files.remove(path);
      throw new UpdateFailure(`size ${size} bytes differs from the reference's ${ref.bytes}`);
    }
    const sha = await sha256File(path, signal);
    if (sha !== ref.sha256) {
      this.files.remove(path);
      throw new UpdateFailure(`sha256 mismatch: the file hashes to ${sha}, the reference says ${ref.sha256}`);
    }

    this.report(rolloutId, kind, ref.id, 'testing');
    // A fresh session on one thread: the pipeline keeps the other cores for recognition meanwhile.
    const session = await openSession(path, { threads: 1 }).catch((err: Error) => {
      this.files.remove(path);
      throw new UpdateFailure(err.message.split('\n')[0] ?? 'cannot load the model');
    });
    let check;
    try {
      check = await checkSelfTest(session, ref.manifest.input.name, ref.selfTest);
    } finally {
      await session.release();
    }
    if (!check.ok) {
      this.files.remove(path);
      throw new UpdateFailure(check.reason.startsWith('self-test') ? check.reason : `self-test: ${check.reason}`);
    }
    this.d.log.info({ kind, model: ref.id, cosine: check.cosine }, 'self-test passed');
    return assignedModel(ref, path);
  }

  private async download(ref: ModelRef, path: string): Promise<void> {
    const c = this.d.config;
    let url: string;
    try {
      url = new URL(ref.url, c.models.baseUrl).toString();
    } catch {
      throw new UpdateFailure(`cannot resolve model url "${ref.url}"${c.models.baseUrl === undefined ? ' (a relative url needs models.baseUrl)' : ''}`);
    }
    const auth = c.mqtt?.password !== undefined ? { username: c.mqtt.username ?? c.deviceId, password: c.mqtt.password } : undefined;
    const t0 = Date.now();
    try {
      const r = await downloadModel(
        { url, path, partPath: this.files.partPath(ref.sha256), bytes: ref.bytes, ...(auth ? { auth } : {}), signal: this.abort.signal },
        { ...DEFAULT_DOWNLOAD_TUNING, ...this.d.download },
      );
      this.d.log.info({ model: ref.id, url: redact(url), bytes: ref.bytes, resumedFrom: r.resumedFrom, attempts: r.attempts, ms: Date.now() - t0 }, 'model downloaded');
    } catch (err) {
      if (err instanceof DownloadError) throw new UpdateFailure(`download failed: ${err.message}`, !err.transient);
      throw err;
    }
  }

  /**
   * An embedder switch needs the gallery's templates of the new model (the hub re-embeds before
   * it assigns an embedder; templates of two models are never compared). Missing ones: ask for a
   * fresh snapshot once and wait for it.
   */
  private async galleryReady(modelId: string): Promise<void> {
    let missing = this.d.gallery.subjectsWithoutModel(modelId);
    if (missing.length === 0) return;
    const waitMs = this.d.config.models.galleryWaitMs;
    this.d.log.info({ model: modelId, subjects: missing.length, waitMs }, 'gallery lacks templates of the new embedder: asking the hub for a snapshot');
    this.d.requestSnapshot();
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      await sleep(Math.min(this.d.galleryPollMs ?? 250, Math.max(1, deadline - Date.now())), undefined, { signal: this.abort.signal });
      missing = this.d.gallery.subjectsWithoutModel(modelId);
      if (missing.length === 0) return;
    }
    throw new UpdateFailure(`gallery not ready: ${missing.length} subject(s) have no template of ${modelId} after a fresh snapshot and ${waitMs} ms (the hub must re-embed the gallery before assigning an embedder)`);
  }

  private trustedKeys(): KeyObject[] {
    const pem = this.d.config.models.signingKey ?? this.state.trustedKey();
    return pem !== undefined ? [createPublicKey(pem)] : [];
  }

  /** Trust on first use: without a configured key, the first key the hub sends is pinned for good. */
  private considerKey(pem: string): void {
    let keyId: string;
    try {
      const key = createPublicKey(pem);
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`an ${key.asymmetricKeyType ?? 'unknown'} key`);
      keyId = keyIdOf(key);
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'the hub sent a signing key that is not an Ed25519 public key: ignored');
      return;
    }
    const trusted = this.trustedKeys()[0];
    if (!trusted) {
      this.state.pinKey(pem);
      this.d.log.warn({ keyId }, 'model signing key trusted on first use (pinned in agent.db); set models.signingKey to configure it explicitly');
      return;
    }
    if (keyIdOf(trusted) !== keyId && !this.keyWarned) {
      this.keyWarned = true;
      this.d.log.warn({ trusted: keyIdOf(trusted), sent: keyId }, 'the hub sends another signing key than the trusted one: models it signs will be refused');
    }
  }

  /** Keep, per kind, the file that runs and the one before it (for a rollback); delete older ones. */
  private pruneFiles(): void {
    const keep = new Set<string>();
    for (const m of Object.values(this.models)) keep.add(m.sha256);
    for (const p of Object.values(this.state.previous())) if (p) keep.add(p.sha256);
    const parts = new Set<string>();
    for (const r of Object.values(this.latest?.models ?? {})) if (r) parts.add(r.sha256);
    const removed = this.files.prune(keep, parts);
    if (removed.length > 0) this.d.log.info({ removed }, 'old model files deleted');
  }

  private report(rolloutId: string | null, kind: UpdatableKind, modelId: string, state: ModelReportMessage['state'], extra: { reason?: string; running?: string } = {}): void {
    const message: ModelReportMessage = { rolloutId, kind, modelId, state, ...extra, at: new Date().toISOString() };
    if (message.reason !== undefined && message.reason.length > 2000) message.reason = message.reason.slice(0, 2000);
    this.lastReport.set(kind, message);
    this.d.publish(topics.models(this.d.config.deviceId), JSON.stringify(message));
  }
}
