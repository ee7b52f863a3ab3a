import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError, isUsableUrl, redactUrl } from '@facefleet/protocol';

export interface HubConfig {
  port: number;
  host: string;
  dataDir: string;
  /** Embedded broker port (0 = a free one); ignored with mqttUrl. */
  mqttPort: number;
  mqttHost: string;
  /** External broker instead of the embedded one. */
  mqttUrl?: string;
  mqttUsername?: string;
  mqttPassword?: string;
  /** PEM certificate and key: the embedded broker then speaks MQTT over TLS (mqtts://). */
  mqttTlsCert?: string;
  mqttTlsKey?: string;
  maxUploadBytes: number;
  /** Events older than this many days are purged (0 = keep). */
  eventRetentionDays: number;
  detector?: string;
  embedder?: string;
  threads: number;
  /** Bytes of JSON per gallery snapshot part (large galleries travel in parts of this size). */
  syncPartBytes: number;
  /** Keep enrolled faces as aligned crops, encrypted at rest, so the gallery can be re-embedded for a new embedder. */
  keepFaceCrops: boolean;
  /** The hub's HTTP address as devices reach it (model downloads); default: where it listens. */
  publicUrl?: string;
  /** PostgreSQL instead of the SQLite file in dataDir (postgres://user:pass@host:5432/db). */
  databaseUrl?: string;
  /** With databaseUrl: the PostgreSQL schema of the hub's tables (default: public). */
  databaseSchema?: string;
  /** With mqttUrl: the shared-subscription group hub replicas ingest device messages in ('' = plain subscriptions). */
  mqttShareGroup: string;
  /** Keys set by the config file, the environment or a flag (the rest are defaults). */
  explicit?: readonly string[];
}

const DEFAULTS: HubConfig = {
  port: 8080,
  host: '127.0.0.1',
  dataDir: 'hub-data',
  mqttPort: 1883,
  mqttHost: '127.0.0.1',
  maxUploadBytes: 20 * 1024 * 1024,
  eventRetentionDays: 90,
  threads: 0,
  syncPartBytes: 1 << 20,
  keepFaceCrops: false,
  mqttShareGroup: 'facefleet-hub',
};

/** Defaults, then the YAML file, then env (FACEFLEET_HUB_*), then flags; frozen. */
export function loadHubConfig(flags: Partial<Record<keyof HubConfig, string>>, file?: string, env: NodeJS.ProcessEnv = process.env): HubConfig {
  let fromFile: Record<string, unknown> = {};
  if (file !== undefined) {
    try {
      const raw = parseYaml(readFileSync(file, 'utf8')) as unknown;
      if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) fromFile = raw as Record<string, unknown>;
      else throw new Error('not a YAML mapping');
    } catch (err) {
      throw new ConfigError(`cannot read hub config ${file}: ${(err as Error).message.split('\n')[0] ?? ''}`);
    }
  }
  const envMap: Partial<Record<keyof HubConfig, string | undefined>> = {
    port: env.FACEFLEET_HUB_PORT,
    dataDir: env.FACEFLEET_HUB_DATA_DIR,
    mqttPort: env.FACEFLEET_HUB_MQTT_PORT,
    mqttUrl: env.FACEFLEET_HUB_MQTT_URL,
    mqttUsername: env.FACEFLEET_HUB_MQTT_USERNAME,
    mqttPassword: env.FACEFLEET_HUB_MQTT_PASSWORD,
    keepFaceCrops: env.FACEFLEET_HUB_KEEP_FACE_CROPS,
    publicUrl: env.FACEFLEET_HUB_PUBLIC_URL,
    databaseUrl: env.FACEFLEET_HUB_DATABASE_URL,
    databaseSchema: env.FACEFLEET_HUB_DATABASE_SCHEMA,
  };
  const merged: Record<string, unknown> = { ...DEFAULTS, ...fromFile };
  for (const [k, v] of Object.entries(envMap)) if (v !== undefined && v !== '') merged[k] = v;
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;
  const known = new Set([...Object.keys(DEFAULTS), 'mqttUrl', 'mqttUsername', 'mqttPassword', 'mqttTlsCert', 'mqttTlsKey', 'detector', 'embedder', 'publicUrl', 'databaseUrl', 'databaseSchema']);
  for (const k of Object.keys(merged)) if (!known.has(k)) throw new ConfigError(`hub config: unknown key "${k}"`);
  const explicit = [...new Set([...Object.keys(fromFile), ...Object.entries(envMap).filter(([, v]) => v !== undefined && v !== '').map(([k]) => k), ...Object.entries(flags).filter(([, v]) => v !== undefined).map(([k]) => k)])];
  const int = (k: keyof HubConfig, min: number, max: number): number => {
    const raw = merged[k];
    const n = typeof raw === 'string' && raw.trim() === '' ? Number.NaN : Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`hub config: ${k} must be an integer from ${min} to ${max}, got ${JSON.stringify(merged[k])}`);
    return n;
  };
  const bool = (k: keyof HubConfig): boolean => {
    const v = merged[k];
    if (v === true || v === 'true' || v === '1') return true;
    if (v === false || v === 'false' || v === '0' || v === undefined) return false;
    throw new ConfigError(`hub config: ${k} must be true or false, got ${JSON.stringify(v)}`);
  };
  const str = (k: keyof HubConfig): string | undefined => {
    const v = merged[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new ConfigError(`hub config: ${k} must be a string`);
    return String(v);
  };
  const c: HubConfig = {
    port: int('port', 0, 65535),
    host: str('host') ?? DEFAULTS.host,
    dataDir: resolve(str('dataDir') ?? DEFAULTS.dataDir),
    mqttPort: int('mqttPort', 0, 65535),
    mqttHost: str('mqttHost') ?? DEFAULTS.mqttHost,
    maxUploadBytes: int('maxUploadBytes', 1024, 1 << 30),
    eventRetentionDays: int('eventRetentionDays', 0, 100_000),
    threads: int('threads', 0, 256),
    syncPartBytes: int('syncPartBytes', 4096, 256 << 20),
    keepFaceCrops: bool('keepFaceCrops'),
    mqttShareGroup: str('mqttShareGroup') ?? DEFAULTS.mqttShareGroup,
  };
  if (/[/#+]/.test(c.mqttShareGroup)) throw new ConfigError(`hub config: mqttShareGroup cannot contain / # or +, got "${c.mqttShareGroup}"`);
  const db = str('databaseUrl');
  if (db !== undefined && db !== '') {
    if (!/^postgres(ql)?:\/\/./.test(db) || !isUsableUrl(db)) throw new ConfigError(`hub config: databaseUrl must be a postgres:// URL, got "${redactUrl(db)}"`);
    c.databaseUrl = db;
  }
  const schema = str('databaseSchema');
  if (schema !== undefined && (schema !== '' || flags.databaseSchema !== undefined)) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new ConfigError(`hub config: databaseSchema must be a lower-case SQL identifier, got "${schema}"`);
    if (c.databaseUrl === undefined) throw new ConfigError('hub config: databaseSchema needs databaseUrl (a schema is a PostgreSQL setting; the SQLite hub lives in dataDir)');
    c.databaseSchema = schema;
  }
  const publicUrl = str('publicUrl');
  if (publicUrl !== undefined) {
    if (!/^https?:\/\/[^/]+/.test(publicUrl)) throw new ConfigError(`hub config: publicUrl must be an http(s) URL, got "${publicUrl}"`);
    c.publicUrl = publicUrl.replace(/\/+$/, '');
  }
  const url = str('mqttUrl');
  if (url !== undefined) {
    if (!/^(mqtts?|wss?|tcp):\/\/./.test(url) || !isUsableUrl(url)) throw new ConfigError(`hub config: mqttUrl must be an mqtt:// or mqtts:// URL, got "${redactUrl(url)}"`);
    c.mqttUrl = url;
  }
  for (const k of ['mqttUsername', 'mqttPassword', 'detector', 'embedder'] as const) {
    const v = str(k);
    if (v !== undefined) c[k] = v;
  }
  const cert = str('mqttTlsCert');
  const key = str('mqttTlsKey');
  if ((cert === undefined) !== (key === undefined)) throw new ConfigError('hub config: mqttTlsCert and mqttTlsKey go together');
  if (cert !== undefined && key !== undefined) {
    c.mqttTlsCert = resolve(cert);
    c.mqttTlsKey = resolve(key);
  }
  c.explicit = explicit;
  return Object.freeze(c);
}

/** Was this key set by the config file, the environment or a flag (not left to its default)? */
export function isExplicit(config: HubConfig, key: keyof HubConfig): boolean {
  return config.explicit?.includes(key) === true;
}
