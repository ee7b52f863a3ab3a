import { parseArgs } from 'node:util';
import type Database from 'better-sqlite3';
import { FacefleetError, isInputError } from '@facefleet/protocol';
import { enrolFiles, GalleryStore } from '@facefleet/gallery';
import { FaceAnalyzer, loadManifest } from '@facefleet/vision';
import { loadConfig, type AgentConfig } from './config.js';
import { ModelState } from './adapters/model-state.js';
import { EXIT_MEMORY_LIMIT } from './components/rss-watchdog.js';
import { AGENT_VERSION, Controller, openStores, processAlive } from './controller.js';

const USAGE = `usage: facefleet agent --config <agent.yaml> [--health-port <n>] [--log-level <level>]
       facefleet agent enroll --config <agent.yaml> --subject <name> <image...> [--json]
       facefleet agent import --config <agent.yaml> <gallery.db> [--json]
       facefleet agent events --config <agent.yaml> [--json] [--limit <n>]
       facefleet agent status --config <agent.yaml> [--json]`;

export interface AgentIo {
  out: (t: string) => void;
  err: (t: string) => void;
}

const stdio: AgentIo = {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
};

/**
 * `facefleet agent …`; returns the exit code (1 for a bad config or model at start, as a daemon;
 * EXIT_MEMORY_LIMIT (75) when the RSS watchdog stopped it, for the supervisor to restart it).
 */
export async function agentMain(argv: string[], io: AgentIo = stdio): Promise<number> {
  const verb = argv[0] !== undefined && !argv[0].startsWith('-') ? argv[0] : 'run';
  const rest = verb === 'run' ? argv : argv.slice(1);
  try {
    switch (verb) {
      case 'run':
        return await runDaemon(rest, io);
      case 'enroll':
        return await enrollVerb(rest, io);
      case 'import':
        return importVerb(rest, io);
      case 'events':
        return eventsVerb(rest, io);
      case 'status':
        return statusVerb(rest, io);
      default:
        io.err(`facefleet agent: unknown verb "${verb}"\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    io.err(`facefleet agent: ${message ?? ''}`);
    if (verb === 'run') return 1;
    return err instanceof FacefleetError && isInputError(err.code) ? 2 : 1;
  }
}

const OPTIONS = {
  config: { type: 'string' },
  json: { type: 'boolean' },
  subject: { type: 'string' },
  limit: { type: 'string' },
  'health-port': { type: 'string' },
  'log-level': { type: 'string' },
} as const;

function args(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  } catch (err) {
    throw new FacefleetError('usage', `${(err as Error).message.split('\n')[0] ?? ''} (${USAGE.split('\n')[0] ?? ''})`);
  }
}

function config(path: string | undefined, overrides: Record<string, unknown> = {}): AgentConfig {
  if (path === undefined) throw new FacefleetError('usage', `--config is required\n${USAGE}`);
  return loadConfig(path, overrides);
}

async function runDaemon(argv: string[], io: AgentIo): Promise<number> {
  const { values, positionals } = args(argv);
  if (positionals.length > 0) throw new FacefleetError('usage', `unexpected argument "${positionals[0] ?? ''}"`);
  const overrides: Record<string, unknown> = {};
  if (values['log-level'] !== undefined) overrides.logLevel = values['log-level'];
  const cfg = config(values.config, overrides);
  const final = values['health-port'] !== undefined ? { ...cfg, health: { ...cfg.health, port: Number(values['health-port']) } } : cfg;
  // Signal listeners go in before anything else: Node installs its OS-level handler only with the
  // first listener, so a SIGTERM that lands earlier (or between "running" and a late listener)
  // would kill the process outright. They stay until exit (removing them inside the handler can
  // let another library's hook re-raise the signal).
  let stopRequested: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => (stopRequested = resolve));
  let signalled = false;
  const controller = new Controller(final, undefined, (code) => {
    if (signalled) return;
    signalled = true;
    stopRequested(code);
  });
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled) return;
    signalled = true;
    controller.log.info({ signal: sig }, 'stopping');
    stopRequested(0);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await controller.start();
  } catch (err) {
    await controller.stop().catch(() => undefined);
    throw err;
  }
  io.err(`facefleet agent ${final.deviceId}: running; health on http://${final.health.host}:${controller.healthPort}/healthz`);
  const code = await stopped;
  await controller.stop();
  if (code === EXIT_MEMORY_LIMIT) io.err(`facefleet agent ${final.deviceId}: stopped at the memory limit (maxRssMb ${final.maxRssMb}); exit ${code} asks the supervisor for a restart`);
  return code;
}

async function enrollVerb(argv: string[], io: AgentIo): Promise<number> {
  const { values, positionals } = args(argv);
  const cfg = config(values.config);
  const name = values.subject;
  if (name === undefined || positionals.length === 0) throw new FacefleetError('usage', `--subject and at least one image are required\n${USAGE}`);
  const stores = openStores(cfg);
  const analyzer = await FaceAnalyzer.open({
    ...(cfg.recognition.detector !== undefined ? { detector: cfg.recognition.detector } : {}),
    ...(cfg.recognition.embedder !== undefined ? { embedder: cfg.recognition.embedder } : {}),
  });
  try {
    const { results } = await enrolFiles(analyzer, stores.gallery, name, positionals);
    const enrolled = results.filter((r) => r.status === 'ok').length;
    const templates = stores.gallery.subjectByName(name)?.templates ?? 0;
    if (values.json === true) io.out(JSON.stringify({ subject: name, enrolled, templates, results }));
    else {
      for (const r of results) (r.status === 'ok' || r.status === 'duplicate' ? io.out : io.err)(`${r.file}: ${r.status}${r.reason !== undefined ? ` (${r.reason})` : ''}`);
      io.out(`${name}: ${enrolled} new template${enrolled === 1 ? '' : 's'}, ${templates} in all (gallery ${cfg.dataDir}/gallery.db)`);
    }
    return results.some((r) => r.status === 'ok' || r.status === 'duplicate') ? 0 : 2;
  } finally {
    await analyzer.close();
    stores.gallery.close();
    stores.db.close();
  }
}

/** Seed a standalone agent from a gallery file made by `facefleet enroll` (same embedder). */
function importVerb(argv: string[], io: AgentIo): number {
  const { values, positionals } = args(argv);
  const cfg = config(values.config);
  if (positionals.length !== 1) throw new FacefleetError('usage', `import takes one gallery file\n${USAGE}`);
  const source = GalleryStore.open(positionals[0]!, { mustExist: true, readonly: true });
  const stores = openStores(cfg);
  try {
    let added = 0;
    let duplicates = 0;
    const templates = source.exportTemplates();
    for (const t of templates) {
      const subject = stores.gallery.ensureSubject(t.subject);
      const r = stores.gallery.addTemplate(subject.id, { modelId: t.modelId, vector: t.vector, ...(t.sourceSha256 !== null ? { sourceSha256: t.sourceSha256 } : {}), ...(t.quality !== null ? { quality: t.quality } : {}) });
      if (r.added) added++;
      else duplicates++;
    }
    const subjects = stores.gallery.listSubjects().length;
    io.out(values.json === true ? JSON.stringify({ added, duplicates, subjects }) : `imported ${added} templates (${duplicates} already present); ${subjects} subjects in ${cfg.dataDir}/gallery.db`);
    return 0;
  } finally {
    source.close();
    stores.gallery.close();
    stores.db.close();
  }
}

function eventsVerb(argv: string[], io: AgentIo): number {
  const { values } = args(argv);
  const cfg = config(values.config);
  const limit = values.limit !== undefined ? Math.max(1, Math.floor(Number(values.limit)) || 100) : 1000;
  const stores = openStores(cfg);
  try {
    const items = stores.outbox.list(limit).map(({ event: e, delivered }) => ({
      id: e.id,
      type: e.type,
      subject: e.subject,
      subjectId: e.subjectId,
      similarity: e.similarity,
      at: e.at,
      delivered,
      source: e.source,
      trackId: e.trackId,
    }));
    if (values.json === true) io.out(JSON.stringify({ items }));
    else if (items.length === 0) io.out('no events');
    else for (const i of items) io.out(`${i.at}  ${i.type.padEnd(11)} ${(i.subject ?? '-').padEnd(16)} ${i.similarity.toFixed(3)}  ${i.delivered ? 'delivered' : 'pending'}  ${i.source ?? ''}`);
    return 0;
  } finally {
    stores.gallery.close();
    stores.db.close();
  }
}

function statusVerb(argv: string[], io: AgentIo): number {
  const { values } = args(argv);
  const cfg = config(values.config);
  const stores = openStores(cfg);
  try {
    const manifest = loadManifest();
    const active = new ModelState(stores.db).active();
    const runtime = readRuntime(stores.db);
    const alive = runtime !== undefined && processAlive(runtime.pid);
    const subjects = stores.gallery.listSubjects();
    const status = {
      deviceId: cfg.deviceId,
      agentVersion: AGENT_VERSION,
      running: alive,
      link: alive ? runtime.link : 'stopped',
      healthPort: alive ? runtime.healthPort : null,
      // Hub-assigned models (models.active) win over the configured ones.
      models: {
        detector: active.detector?.id ?? cfg.recognition.detector ?? manifest.defaults.detector,
        embedder: active.embedder?.id ?? cfg.recognition.embedder ?? manifest.defaults.embedder,
      },
      gallery: { sequences: stores.gallery.sequences(), subjects: subjects.length, templates: subjects.reduce((n, s) => n + s.templates, 0), modelIds: stores.gallery.modelIds() },
      outboxDepth: stores.outbox.depth(),
      outbox: stores.outbox.counters(),
    };
    io.out(values.json === true ? JSON.stringify(status) : Object.entries(status).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('\n'));
    return 0;
  } finally {
    stores.gallery.close();
    stores.db.close();
  }
}

function readRuntime(db: Database.Database): { pid: number; link: string; healthPort: number } | undefined {
  const row = db.prepare("SELECT value FROM kv WHERE key = 'runtime'").get() as { value: string } | undefined;
  return row ? (JSON.parse(row.value) as { pid: number; link: string; healthPort: number }) : undefined;
}

