import { parseArgs } from 'node:util';
import { ConfigError, FacefleetError } from '@facefleet/protocol';
import { loadHubConfig, type HubConfig } from './config.js';
import type { INestApplication } from '@nestjs/common';
import { startHttp } from './http/app.js';
import { Hub } from './hub.js';
import { ROLES, type Role } from './store/keys.repository.js';

const USAGE = `usage: facefleet hub [--config hub.yaml] [--port <http>] [--mqtt-port <mqtt>] [--data-dir <dir>] [--mqtt-url <url>]
       facefleet hub create-key --data-dir <dir> --role admin|operator|viewer`;

export interface HubIo {
  out: (t: string) => void;
  err: (t: string) => void;
}

const stdio: HubIo = { out: (t) => process.stdout.write(`${t}\n`), err: (t) => process.stderr.write(`${t}\n`) };

const OPTIONS = {
  config: { type: 'string' },
  port: { type: 'string' },
  'mqtt-port': { type: 'string' },
  'data-dir': { type: 'string' },
  'mqtt-url': { type: 'string' },
  'database-url': { type: 'string' },
  role: { type: 'string' },
  host: { type: 'string' },
} as const;

/** `facefleet hub …`; returns the exit code. */
export async function hubMain(argv: string[], io: HubIo = stdio): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    io.err(`facefleet hub: ${(err as Error).message.split('\n')[0] ?? ''}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  try {
    if (values['database-url'] !== undefined) throw new ConfigError('--database-url (PostgreSQL) is not supported yet: the hub stores its data in SQLite under --data-dir');
    const flags: Partial<Record<keyof HubConfig, string>> = {};
    if (values.port !== undefined) flags.port = values.port;
    if (values['mqtt-port'] !== undefined) flags.mqttPort = values['mqtt-port'];
    if (values['data-dir'] !== undefined) flags.dataDir = values['data-dir'];
    if (values['mqtt-url'] !== undefined) flags.mqttUrl = values['mqtt-url'];
    if (values.host !== undefined) flags.host = values.host;
    const config = loadHubConfig(flags, values.config);
    if (positionals[0] === 'create-key') return createKey(config, values.role, io);
    if (positionals.length > 0) throw new FacefleetError('usage', `unknown hub verb "${positionals[0] ?? ''}"\n${USAGE}`);
    return await serve(config, { portGiven: values.port !== undefined, mqttPortGiven: values['mqtt-port'] !== undefined }, io);
  } catch (err) {
    io.err(`facefleet hub: ${(err as Error).message.split('\n')[0] ?? ''}`);
    return err instanceof FacefleetError && err.code === 'usage' ? 2 : 1;
  }
}

function createKey(config: HubConfig, role: string | undefined, io: HubIo): number {
  if (role === undefined || !ROLES.includes(role as Role)) throw new FacefleetError('usage', `--role must be one of ${ROLES.join(', ')}`);
  const hub = Hub.openStore(config);
  try {
    const k = hub.keys.create(role as Role);
    io.out(k.key);
    io.err(`created an API key with role ${k.role} (id ${k.id}); it is shown only this once`);
    return 0;
  } finally {
    hub.db.close();
  }
}

/**
 * Start the hub and its HTTP side. A default port that is taken (Mosquitto holds 1883 on many
 * machines) falls back to a free one, said in the log; a port the caller chose must be free.
 */
export async function startHubServer(config: HubConfig, given: { portGiven: boolean; mqttPortGiven: boolean }, log: (m: string) => void): Promise<{ hub: Hub; app: INestApplication; port: number }> {
  let hub: Hub;
  try {
    hub = await Hub.start(config, log);
  } catch (err) {
    if (!given.mqttPortGiven && !config.mqttUrl && err instanceof ConfigError && /MQTT port/.test(err.message)) {
      log(`MQTT port ${config.mqttPort} is taken; using a free one`);
      hub = await Hub.start({ ...config, mqttPort: 0 }, log);
    } else throw err;
  }
  try {
    return { hub, ...(await startHttp(hub)) };
  } catch (err) {
    if (!given.portGiven && err instanceof ConfigError && /HTTP port/.test(err.message)) {
      log(`HTTP port ${config.port} is taken; using a free one`);
      (hub as { config: HubConfig }).config = { ...hub.config, port: 0 };
      return { hub, ...(await startHttp(hub)) };
    }
    await hub.close();
    throw err;
  }
}

async function serve(config: HubConfig, given: { portGiven: boolean; mqttPortGiven: boolean }, io: HubIo): Promise<number> {
  const log = (m: string): void => io.err(`hub: ${m}`);
  // Listeners first and kept until exit (see the agent's main for why).
  let stopRequested: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  process.on('SIGTERM', () => stopRequested());
  process.on('SIGINT', () => stopRequested());
  const { hub, app, port } = await startHubServer(config, given, log);
  const http = { app, port };
  const base = `http://${config.host}:${http.port}`;
  hub.publicUrl = config.publicUrl ?? base;
  io.err(`facefleet hub: listening on ${base} (API ${base}/api/v1, docs ${base}/api/docs), MQTT ${hub.broker.url}, data ${config.dataDir}`);
  await stopped;
  await http.app.close();
  await hub.close();
  return 0;
}
