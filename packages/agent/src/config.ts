import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError, isUsableUrl, redactUrl } from '@facefleet/protocol';

export type SourceConfig =
  | { type: 'folder'; path: string; name: string; pollMs: number }
  | { type: 'stream'; url: string; loop: boolean; name: string; fps: number; listen: boolean }
  | { type: 'snapshot'; url: string; intervalMs: number; name: string }
  | { type: 'webcam'; device: string; width: number; height: number; fps: number; name: string };

export interface AgentConfig {
  deviceId: string;
  dataDir: string;
  sources: SourceConfig[];
  mqtt: { url: string; username?: string; password?: string; ca?: string; cert?: string; key?: string; keepaliveS: number } | null;
  health: { port: number; host: string };
  recognition: {
    detector?: string;
    embedder?: string;
    threshold?: number;
    threads: number;
    minFaceSizePx: number;
    minQuality: number;
    liveness: boolean;
    minLiveness: number;
    unknownEvents: boolean;
    cooldownMs: number;
    /** Detector input, long side in px (default 640). */
    inputSize: number;
    /** Extra tiled pass for frames much larger than the input (small faces; costs up to 9 passes). */
    tile: boolean;
  };
  pipeline: { queueSize: number };
  tracker: { iou: number; maxAgeMs: number; minHits: number; bestFaces: number };
  outbox: { maxEvents: number; maxAgeMs: number; sendBatch: number; retryMs: number };
  /** Fleet model updates (issue 5). */
  models: {
    /** PEM of the hub's Ed25519 model-signing key (from the text or the file given); absent: trust on first use. */
    signingKey?: string;
    /** How long an embedder update waits for the gallery to hold the new model's templates. */
    galleryWaitMs: number;
    /** Base for a relative model URL in an assignment (the hub's HTTP address). */
    baseUrl?: string;
  };
  /** Stop (exit code 75) when the resident memory stays above this many MB, for systemd to restart the agent; 0 = off. */
  maxRssMb: number;
  statusIntervalMs: number;
  logLevel: string;
}

type Raw = Record<string, unknown>;

const DEFAULTS = {
  health: { port: 0, host: '127.0.0.1' },
  recognition: { threads: 0, minFaceSizePx: 32, minQuality: 0.1, liveness: false, minLiveness: 0.5, unknownEvents: false, cooldownMs: 30_000, inputSize: 640, tile: false },
  pipeline: { queueSize: 2 },
  tracker: { iou: 0.3, maxAgeMs: 1500, minHits: 3, bestFaces: 3 },
  outbox: { maxEvents: 100_000, maxAgeMs: 30 * 24 * 3600_000, sendBatch: 100, retryMs: 5000 },
  models: { galleryWaitMs: 120_000 },
  maxRssMb: 0,
  statusIntervalMs: 30_000,
  logLevel: 'info',
} as const;

/**
 * Load the agent config: defaults, then the YAML file, then env (FACEFLEET_AGENT_DEVICE_ID,
 * FACEFLEET_AGENT_DATA_DIR, FACEFLEET_AGENT_MQTT_URL, FACEFLEET_AGENT_MQTT_USERNAME,
 * FACEFLEET_AGENT_MQTT_PASSWORD, FACEFLEET_AGENT_HEALTH_PORT), then flags. Any invalid value
 * throws a ConfigError naming the field. The result is frozen.
 */
export function loadConfig(path: string, overrides: Raw = {}, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`config ${path} must be a YAML mapping`);
  const r = { ...(raw as Raw) };
  const envMap: [string, (v: string) => void][] = [
    ['FACEFLEET_AGENT_DEVICE_ID', (v) => (r.deviceId = v)],
    ['FACEFLEET_AGENT_DATA_DIR', (v) => (r.dataDir = v)],
    ['FACEFLEET_AGENT_MQTT_URL', (v) => (r.mqtt = { ...obj(r.mqtt), url: v })],
    ['FACEFLEET_AGENT_MQTT_USERNAME', (v) => (r.mqtt = { ...obj(r.mqtt), username: v })],
    ['FACEFLEET_AGENT_MQTT_PASSWORD', (v) => (r.mqtt = { ...obj(r.mqtt), password: v })],
    ['FACEFLEET_AGENT_HEALTH_PORT', (v) => (r.health = { ...obj(r.health), port: Number(v) })],
  ];
  for (const [name, set] of envMap) {
    const v = env[name];
    if (v !== undefined && v !== '') set(v);
  }
  Object.assign(r, overrides);
  return Object.freeze(validate(r, dirname(resolve(path))));
}

function obj(v: unknown): Raw {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : {};
}

function validate(r: Raw, base: string): AgentConfig {
  const str = (v: unknown, field: string, opts: { optional?: boolean } = {}): string | undefined => {
    if (v === undefined || v === null) {
      if (opts.optional === true) return undefined;
      throw new ConfigError(`config: ${field} is required`);
    }
    if (typeof v !== 'string' || v.trim() === '') throw new ConfigError(`config: ${field} must be a non-empty string`);
    return v;
  };
  const num = (v: unknown, field: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new ConfigError(`config: ${field} must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (v: unknown, field: string, def: boolean): boolean => {
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') throw new ConfigError(`config: ${field} must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const known = new Set(['deviceId', 'dataDir', 'sources', 'mqtt', 'health', 'recognition', 'pipeline', 'tracker', 'outbox', 'models', 'maxRssMb', 'statusIntervalMs', 'logLevel']);
  for (const k of Object.keys(r)) if (!known.has(k)) throw new ConfigError(`config: unknown key "${k}" (known: ${[...known].join(', ')})`);

  const deviceId = str(r.deviceId, 'deviceId')!;
  if (/[/#+\s]/.test(deviceId)) throw new ConfigError('config: deviceId must not contain "/", "#", "+" or spaces');
  const dataDir = resolve(base, str(r.dataDir, 'dataDir')!);
  if (!Array.isArray(r.sources)) throw new ConfigError('config: sources must be a list (it may be empty)');
  const sources = r.sources.map((s, i) => source(s, i, base, { str, num, bool }));
  const names = new Set<string>();
  for (const s of sources) {
    if (names.has(s.name)) throw new ConfigError(`config: sources: two sources are named "${s.name}"`);
    names.add(s.name);
  }
  let mqtt: AgentConfig['mqtt'] = null;
  if (r.mqtt !== undefined && r.mqtt !== null) {
    const m = obj(r.mqtt);
    const url = str(m.url, 'mqtt.url')!;
    if (!/^(mqtts?|wss?|tcp|ssl):\/\//.test(url)) throw new ConfigError(`config: mqtt.url must start with mqtt://, mqtts://, ws:// or wss://, got "${redactUrl(url)}"`);
    // Credentials go in mqtt.username/password; in the URL a password with # / ? or a space does not parse.
    if (!isUsableUrl(url)) throw new ConfigError(`config: mqtt.url is not a valid URL (put credentials in mqtt.username and mqtt.password), got "${redactUrl(url)}"`);
    mqtt = { url, keepaliveS: num(m.keepaliveS, 'mqtt.keepaliveS', 30, 5, 3600) };
    for (const k of ['username', 'password', 'ca', 'cert', 'key'] as const) {
      const v = str(m[k], `mqtt.${k}`, { optional: true });
      if (v !== undefined) mqtt[k] = k === 'ca' || k === 'cert' || k === 'key' ? resolve(base, v) : v;
    }
  }
  const h = obj(r.health);
  const rec = obj(r.recognition);
  const d = DEFAULTS;
  const recognition: AgentConfig['recognition'] = {
    threads: num(rec.threads, 'recognition.threads', d.recognition.threads, 0, 256),
    minFaceSizePx: num(rec.minFaceSizePx, 'recognition.minFaceSizePx', d.recognition.minFaceSizePx, 0, 10_000),
    minQuality: num(rec.minQuality, 'recognition.minQuality', d.recognition.minQuality, 0, 1),
    liveness: bool(rec.liveness, 'recognition.liveness', d.recognition.liveness),
    minLiveness: num(rec.minLiveness, 'recognition.minLiveness', d.recognition.minLiveness, 0, 1),
    unknownEvents: bool(rec.unknownEvents, 'recognition.unknownEvents', d.recognition.unknownEvents),
    cooldownMs: num(rec.cooldownMs, 'recognition.cooldownMs', d.recognition.cooldownMs, 0),
    inputSize: num(rec.inputSize, 'recognition.inputSize', d.recognition.inputSize, 64, 4096),
    tile: bool(rec.tile, 'recognition.tile', d.recognition.tile),
  };
  const det = str(rec.detector, 'recognition.detector', { optional: true });
  if (det !== undefined) recognition.detector = det;
  const emb = str(rec.embedder, 'recognition.embedder', { optional: true });
  if (emb !== undefined) recognition.embedder = emb;
  if (rec.threshold !== undefined) recognition.threshold = num(rec.threshold, 'recognition.threshold', 0, -1, 1);
  const t = obj(r.tracker);
  const o = obj(r.outbox);
  const mo = obj(r.models);
  const models: AgentConfig['models'] = { galleryWaitMs: num(mo.galleryWaitMs, 'models.galleryWaitMs', d.models.galleryWaitMs, 0) };
  const key = str(mo.signingKey, 'models.signingKey', { optional: true });
  if (key !== undefined) models.signingKey = signingKey(key, base);
  const baseUrl = str(mo.baseUrl, 'models.baseUrl', { optional: true });
  if (baseUrl !== undefined) {
    if (!/^https?:\/\//.test(baseUrl)) throw new ConfigError(`config: models.baseUrl must start with http:// or https://, got "${baseUrl}"`);
    models.baseUrl = baseUrl;
  }
  return {
    deviceId,
    dataDir,
    sources,
    mqtt,
    health: { port: num(h.port, 'health.port', d.health.port, 0, 65535), host: str(h.host, 'health.host', { optional: true }) ?? d.health.host },
    recognition,
    pipeline: { queueSize: num(obj(r.pipeline).queueSize, 'pipeline.queueSize', d.pipeline.queueSize, 1, 1000) },
    tracker: {
      iou: num(t.iou, 'tracker.iou', d.tracker.iou, 0.01, 1),
      maxAgeMs: num(t.maxAgeMs, 'tracker.maxAgeMs', d.tracker.maxAgeMs, 1),
      minHits: num(t.minHits, 'tracker.minHits', d.tracker.minHits, 1, 1000),
      bestFaces: num(t.bestFaces, 'tracker.bestFaces', d.tracker.bestFaces, 1, 100),
    },
    outbox: {
      maxEvents: num(o.maxEvents, 'outbox.maxEvents', d.outbox.maxEvents, 1),
      maxAgeMs: num(o.maxAgeMs, 'outbox.maxAgeMs', d.outbox.maxAgeMs, 1000),
      sendBatch: num(o.sendBatch, 'outbox.sendBatch', d.outbox.sendBatch, 1, 10_000),
      retryMs: num(o.retryMs, 'outbox.retryMs', d.outbox.retryMs, 10),
    },
    models,
    maxRssMb: num(r.maxRssMb, 'maxRssMb', d.maxRssMb, 0, 1_000_000),
    statusIntervalMs: num(r.statusIntervalMs, 'statusIntervalMs', d.statusIntervalMs, 100),
    logLevel: str(r.logLevel, 'logLevel', { optional: true }) ?? d.logLevel,
  };
}

/** models.signingKey: PEM text, or a path (relative to the config file) to a PEM file; an Ed25519 public key. */
function signingKey(value: string, base: string): string {
  let pem = value;
  if (!value.includes('-----BEGIN')) {
    try {
      pem = readFileSync(resolve(base, value), 'utf8');
    } catch (err) {
      throw new ConfigError(`config: models.signingKey: cannot read ${resolve(base, value)} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }
  let type: string | undefined;
  try {
    type = createPublicKey(pem).asymmetricKeyType;
  } catch (err) {
    throw new ConfigError(`config: models.signingKey is not a PEM public key: ${(err as Error).message.split('\n')[0] ?? ''}`);
  }
  if (type !== 'ed25519') throw new ConfigError(`config: models.signingKey must be an Ed25519 key, got ${type ?? 'unknown'}`);
  return pem;
}

interface Checkers {
  str: (v: unknown, field: string, opts?: { optional?: boolean }) => string | undefined;
  num: (v: unknown, field: string, def: number, min: number, max?: number) => number;
  bool: (v: unknown, field: string, def: boolean) => boolean;
}

function source(s: unknown, i: number, base: string, c: Checkers): SourceConfig {
  const f = `sources[${i}]`;
  const o = obj(s);
  const type = c.str(o.type, `${f}.type`);
  const name = c.str(o.name, `${f}.name`, { optional: true }) ?? `${type ?? 'source'}${i}`;
  switch (type) {
    case 'folder':
      return { type, name, path: resolve(base, c.str(o.path, `${f}.path`)!), pollMs: c.num(o.pollMs, `${f}.pollMs`, 500, 50) };
    case 'stream':
      return {
        type,
        name,
        url: c.str(o.url, `${f}.url`)!,
        loop: c.bool(o.loop, `${f}.loop`, false),
        fps: c.num(o.fps, `${f}.fps`, 10, 0.1, 120),
        listen: c.bool(o.listen, `${f}.listen`, false),
      };
    case 'snapshot': {
      const url = c.str(o.url, `${f}.url`)!;
      if (!/^https?:\/\//i.test(url) || !isUsableUrl(url)) throw new ConfigError(`config: ${f}.url must be an http:// or https:// URL, got "${redactUrl(url)}"`);
      return { type, name, url, intervalMs: c.num(o.intervalMs, `${f}.intervalMs`, 1000, 50) };
    }
    case 'webcam':
      return {
        type,
        name,
        device: c.str(o.device, `${f}.device`, { optional: true }) ?? '/dev/video0',
        width: c.num(o.width, `${f}.width`, 1280, 16, 8192),
        height: c.num(o.height, `${f}.height`, 720, 16, 8192),
        fps: c.num(o.fps, `${f}.fps`, 2, 0.1, 60),
      };
    case undefined:
    default:
      throw new ConfigError(`config: ${f}.type must be folder, stream, snapshot or webcam, got ${JSON.stringify(o.type)}`);
  }
}
