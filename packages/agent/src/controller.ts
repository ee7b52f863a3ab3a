import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { pino, type Logger } from 'pino';
import { GalleryStore } from '@facefleet/gallery';
import { ConfigError } from '@facefleet/protocol';
import type { FaceAnalyzer } from '@facefleet/vision';
import { openAgentDb } from './adapters/agent-db.js';
import { ModelFiles } from './adapters/model-files.js';
import { ModelState } from './adapters/model-state.js';
import { MqttLink } from './adapters/mqtt-link.js';
import { GallerySync } from './components/gallery-sync.js';
import { HealthServer } from './components/health.js';
import { Metrics } from './components/metrics.js';
import { ModelUpdater } from './components/model-updater.js';
import { Outbox } from './components/outbox.js';
import { Pipeline } from './components/pipeline.js';
import { EXIT_MEMORY_LIMIT, RssWatchdog } from './components/rss-watchdog.js';
import { openAnalyzer, ownModel, startModels, thresholdFor, type RunningModels } from './components/running-models.js';
import type { AgentConfig, SourceConfig } from './config.js';
import { FolderSource } from './sources/folder.js';
import type { FrameSource } from './sources/source.js';
import { SnapshotSource } from './sources/snapshot.js';
import { StreamSource } from './sources/stream.js';
import { WebcamSource } from './sources/webcam.js';

export const AGENT_VERSION = '0.1.0';

export interface AgentStores {
  db: Database.Database;
  gallery: GalleryStore;
  outbox: Outbox;
}

/** The agent's files in its data directory: agent.db (outbox, state) and gallery.db. */
/**
 * One daemon per data directory: a pid file, taken over only when its process is gone. Two
 * agents on one outbox and folder state would each process every new file.
 */
function acquireLock(dataDir: string): string {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'agent.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return path;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new ConfigError(`cannot write ${path}: ${(err as Error).message}`);
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new ConfigError(`another agent (pid ${pid}) is running with data directory ${dataDir}`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new ConfigError(`cannot take the lock ${path}`);
}

/** Whether a process with this pid exists (EPERM: it exists but is not ours). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function openStores(config: AgentConfig): AgentStores {
  mkdirSync(config.dataDir, { recursive: true });
  const db = openAgentDb(join(config.dataDir, 'agent.db'));
  const gallery = GalleryStore.open(join(config.dataDir, 'gallery.db'));
  return { db, gallery, outbox: new Outbox(db, config.outbox) };
}

/**
 * Composition root: config -> logger -> stores -> models -> outbox/link -> pipeline -> model
 * updater -> sources -> health. Started in that order and stopped in reverse. Fails fast at start
 * (config, models, database, port); stays up at run time (sources, network, bad frames, failed
 * model updates are logged and counted). The analyzer is swappable: a model update replaces it
 * between two frames.
 */
export class Controller {
  readonly metrics = new Metrics();
  readonly log: Logger;
  private stores?: AgentStores;
  private analyzer?: FaceAnalyzer;
  private link?: MqttLink;
  private gallerySync?: GallerySync;
  private pipeline?: Pipeline;
  private updater?: ModelUpdater;
  private watchdog?: RssWatchdog;
  private sources: FrameSource[] = [];
  private health?: HealthServer;
  healthPort = 0;
  private runtimeTimer?: NodeJS.Timeout;
  private lock?: string;

  /** `requestStop(code)`: the daemon should stop in order and exit with `code` (the RSS watchdog). */
  constructor(
    readonly config: AgentConfig,
    log?: Logger,
    private readonly requestStop?: (code: number) => void,
  ) {
    this.log = log ?? pino({ level: config.logLevel, base: { deviceId: config.deviceId } }, pino.destination(2));
  }

  /** The models that run now (tests, status). */
  get models(): { detector: string; embedder: string } | undefined {
    return this.analyzer ? { detector: this.analyzer.detectorId, embedder: this.analyzer.embedderId } : undefined;
  }

  /** The models recorded in models.active (if they verify), else the configured ones; opened. */
  private async openModels(): Promise<{ analyzer: FaceAnalyzer; running: RunningModels }> {
    const c = this.config;
    const log = this.log.child({ component: 'models' });
    const running = await startModels(c, new ModelState(this.stores!.db).active(), new ModelFiles(c.dataDir), log);
    try {
      return { analyzer: await openAnalyzer(running, c), running };
    } catch (err) {
      if (running.detector.ref === undefined && running.embedder.ref === undefined) throw err;
      // A hub-assigned model that passed its self-test will not open now: keep recognising with ours.
      log.warn({ err: (err as Error).message }, 'cannot open the models in models.active: running the configured models instead');
      const own = { detector: ownModel('detector', c), embedder: ownModel('embedder', c) };
      return { analyzer: await openAnalyzer(own, c), running: own };
    }
  }

  async start(): Promise<void> {
    const c = this.config;
    this.lock = acquireLock(c.dataDir);
    const stores = (this.stores = openStores(c));
    const opened = await this.openModels();
    const analyzer = (this.analyzer = opened.analyzer);
    // A managed gallery holds every model the hub sends and is searched per model; a standalone one holds one.
    if (!stores.gallery.managed) stores.gallery.assertModel(analyzer.embedderId);
    const threshold = thresholdFor(opened.running.embedder, c);
    const m = this.metrics;
    m.gauge('facefleet_outbox_depth', 'Events stored and not yet confirmed by the hub', () => stores.outbox.depth());
    m.gauge('facefleet_outbox_dropped_total', 'Undelivered events dropped by the outbox limits', () => {
      const k = stores.outbox.counters();
      return { '{reason="full"}': k.droppedFull ?? 0, '{reason="age"}': k.droppedAge ?? 0 };
    });
    m.gauge('facefleet_gallery_templates', 'Templates in the local gallery', () => stores.gallery.listSubjects().reduce((n, s) => n + s.templates, 0));
    m.gauge('facefleet_gallery_sequence', 'Gallery sequence per gallery', () =>
      Object.fromEntries(Object.entries(stores.gallery.sequences()).map(([g, seq]) => [`{gallery="${g}"}`, seq])),
    );
    m.gauge('facefleet_model_info', 'Loaded models', () => {
      const a = this.analyzer ?? analyzer;
      return { [`{detector="${a.detectorId}",embedder="${a.embedderId}"}`]: 1 };
    });
    m.gauge('facefleet_model_updates_total', 'Model switches since start', () => this.updater?.updates ?? 0);
    m.gauge('facefleet_link_connected', 'MQTT link state (1 connected)', () => (this.link?.state === 'connected' ? 1 : 0));

    this.link = new MqttLink({
      config: c,
      agentVersion: AGENT_VERSION,
      due: (limit) => stores.outbox.due(limit, c.outbox.retryMs),
      markSent: (ids) => stores.outbox.markSent(ids),
      onAck: (ids) => {
        const n = stores.outbox.markDelivered(ids);
        m.inc('facefleet_events_acked_total', 'Events confirmed by the hub', n);
      },
      onReconnect: () => stores.outbox.resetInFlight(),
      status: () => ({
        at: new Date().toISOString(),
        agentVersion: AGENT_VERSION,
        models: this.models ?? { detector: analyzer.detectorId, embedder: analyzer.embedderId },
        galleries: stores.gallery.sequences(),
        outboxDepth: stores.outbox.depth(),
        counters: { framesDropped: m.get('facefleet_frames_dropped_total') },
      }),
      log: this.log.child({ component: 'link' }),
      onState: () => this.writeRuntime(),
      onConnected: () => {
        this.gallerySync?.onConnected();
        this.updater?.onConnected();
      },
      onMessage: (topic, payload) => {
        if (!this.gallerySync?.onMessage(topic, payload)) m.inc('facefleet_messages_dropped_total', 'Invalid inbound messages dropped');
      },
      onDrop: (reason) => {
        m.inc('facefleet_messages_dropped_total', 'Invalid inbound messages dropped');
        this.log.warn({ reason }, 'dropped invalid message');
      },
    });
    this.gallerySync = new GallerySync(
      c.deviceId,
      stores.gallery,
      this.link,
      this.log.child({ component: 'gallery-sync' }),
      (config) => this.updater?.onConfig(config),
      (payload) => this.updater?.onInvalidConfig(payload),
    );
    m.gauge('facefleet_gallery_batches_applied_total', 'Gallery change batches applied', () => this.gallerySync?.applied ?? 0);
    this.pipeline = new Pipeline({
      config: c,
      analyzer,
      gallery: stores.gallery,
      metrics: m,
      threshold,
      onEvent: (event) => {
        stores.outbox.add(event);
        void this.link?.flush();
      },
      log: this.log.child({ component: 'pipeline' }),
    });
    const link = this.link;
    const pipeline = this.pipeline;
    this.updater = new ModelUpdater({
      config: c,
      db: stores.db,
      running: opened.running,
      gallery: stores.gallery,
      publish: (topic, payload) => link.publish(topic, payload),
      requestSnapshot: () => this.gallerySync?.requestSnapshot(),
      swap: async (next, nextThreshold) => {
        const old = await pipeline.setAnalyzer(next, nextThreshold);
        this.analyzer = next;
        link.publishStatus();
        return old;
      },
      log: this.log.child({ component: 'models' }),
    });
    this.watchdog = new RssWatchdog({
      maxRssMb: c.maxRssMb,
      busy: () => this.updater?.busy === true,
      onLimit: (rssMb) => {
        this.log.warn({ rssMb, maxRssMb: c.maxRssMb, exitCode: EXIT_MEMORY_LIMIT }, 'resident memory stayed over maxRssMb: stopping for the supervisor to restart the agent');
        this.requestStop?.(EXIT_MEMORY_LIMIT);
      },
    });
    this.health = new HealthServer(c.health.host, c.health.port, () => this.healthReport(), () => m.render());
    this.healthPort = await this.health.start();
    this.log.info({ port: this.healthPort, host: c.health.host }, 'health endpoint listening');
    this.link.start();
    this.pipeline.start();
    this.watchdog.start();
    this.writeRuntime();
    this.runtimeTimer = setInterval(() => this.writeRuntime(), 2000);
    this.sources = c.sources.map((s) => this.makeSource(s, stores.db));
    for (const s of this.sources) s.start((frame) => this.pipeline!.offer(frame, s.live));
    this.log.info({ sources: this.sources.length, detector: analyzer.detectorId, embedder: analyzer.embedderId, threshold, maxRssMb: c.maxRssMb }, 'agent started');
  }

  private makeSource(s: SourceConfig, db: Database.Database): FrameSource {
    const log = this.log.child({ component: 'source', source: s.name });
    const onError = (message: string): void => {
      this.metrics.inc('facefleet_source_errors_total', 'Source errors (capture, stream, network)', 1, { source: s.name });
      log.warn({ err: message }, 'source error');
    };
    switch (s.type) {
      case 'folder': {
        db.exec('CREATE TABLE IF NOT EXISTS folder_seen (source TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (source, key))');
        const has = db.prepare('SELECT 1 FROM folder_seen WHERE source = ? AND key = ?');
        const add = db.prepare('INSERT OR IGNORE INTO folder_seen (source, key) VALUES (?, ?)');
        return new FolderSource(s.name, s.path, s.pollMs, { has: (k) => has.get(s.name, k) !== undefined, add: (k) => void add.run(s.name, k) }, onError);
      }
      case 'stream':
        return new StreamSource(s.name, s.url, { loop: s.loop, fps: s.fps, listen: s.listen }, onError);
      case 'snapshot':
        return new SnapshotSource(s.name, s.url, s.intervalMs, onError);
      case 'webcam':
        return new WebcamSource(s.name, s, onError);
    }
  }

  healthReport(): Record<string, unknown> {
    return {
      status: 'ok',
      deviceId: this.config.deviceId,
      link: this.link?.state ?? 'disabled',
      models: this.models ?? null,
      outboxDepth: this.stores?.outbox.depth() ?? 0,
      sources: Object.fromEntries(this.sources.map((s) => [s.name, s.stats])),
    };
  }

  /** Wait until every discrete source has been read and the pipeline is idle (tests, one-shot runs). */
  async drained(): Promise<void> {
    await this.pipeline?.drained();
  }

  /** For `facefleet agent status` from another process: pid, link state, health port. */
  private writeRuntime(): void {
    const value = JSON.stringify({ pid: process.pid, link: this.link?.state ?? 'disabled', healthPort: this.healthPort, at: new Date().toISOString() });
    this.stores?.db.prepare("INSERT INTO kv (key, value) VALUES ('runtime', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(value);
  }

  async stop(): Promise<void> {
    clearInterval(this.runtimeTimer);
    this.watchdog?.stop();
    // First: an update in progress is abandoned (a download resumes after the restart).
    await this.updater?.stop();
    for (const s of this.sources) await s.stop().catch(() => undefined);
    await this.pipeline?.stop();
    this.gallerySync?.stop();
    await this.link?.stop().catch(() => undefined);
    await this.health?.stop();
    await this.analyzer?.close();
    if (this.stores?.db.open) this.stores.db.prepare("DELETE FROM kv WHERE key = 'runtime'").run();
    this.stores?.gallery.close();
    this.stores?.db.close();
    if (this.lock) rmSync(this.lock, { force: true });
    this.log.info({}, 'agent stopped');
  }
}
