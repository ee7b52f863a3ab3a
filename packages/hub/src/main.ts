import { parseArgs } from 'node:util';
import { ConfigError, FacefleetError } from '@facefleet/protocol';
import { loadHubConfig, type HubConfig } from './config.js';
import type { INestApplication } from '@nestjs/common';
import { startHttp } from './http/app.js';
import { Hub } from './hub.js';
import { join } from 'node:path';
import { writeBrokerConfig } from './mqtt/mosquitto.js';
import { ROLES, type Role } from './store/ports.js';

const USAGE = `usage: facefleet hub [--config hub.yaml] [--port <http>] [--mqtt-port <mqtt>] [--data-dir <dir>] [--database-url <postgres url>] [--mqtt-url <url>]
       facefleet hub create-key (--data-dir <dir> | --database-url <url>) --role admin|operator|viewer
       facefleet hub broker-config --out <dir> (--data-dir <dir> | --database-url <url>) --hub-username <name> --hub-password <secret> [--broker-port <port>]
       facefleet hub migrate --data-dir <dir with hub.db> --database-url <url>   (copy a SQLite hub into PostgreSQL)`;

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
  'database-schema': { type: 'string' },
  role: { type: 'string' },
  out: { type: 'string' },
  'hub-username': { type: 'string' },
  'hub-password': { type: 'string' },
  'broker-port': { type: 'string' },
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
    const flags: Partial<Record<keyof HubConfig, string>> = {};
    if (values.port !== undefined) flags.port = values.port;
    if (values['mqtt-port'] !== undefined) flags.mqttPort = values['mqtt-port'];
    if (values['data-dir'] !== undefined) flags.dataDir = values['data-dir'];
    if (values['mqtt-url'] !== undefined) flags.mqttUrl = values['mqtt-url'];
    if (values.host !== undefined) flags.host = values.host;
    if (values['database-url'] !== undefined) flags.databaseUrl = values['database-url'];
    if (values['database-schema'] !== undefined) flags.databaseSchema = values['database-schema'];
    const config = loadHubConfig(flags, values.config);
    if (positionals[0] === 'create-key') return await createKey(config, values.role, io);
    if (positionals[0] === 'broker-config') return await brokerConfig(config, values, io);
    if (positionals[0] === 'migrate') return await migrate(config, io);
    if (positionals.length > 0) throw new FacefleetError('usage', `unknown hub verb "${positionals[0] ?? ''}"\n${USAGE}`);
    return await serve(config, { portGiven: values.port !== undefined, mqttPortGiven: values['mqtt-port'] !== undefined }, io);
  } catch (err) {
    io.err(`facefleet hub: ${(err as Error).message.split('\n')[0] ?? ''}`);
    return err instanceof FacefleetError && err.code === 'usage' ? 2 : 1;
  }
}

async function createKey(config: HubConfig, role: string | undefined, io: HubIo): Promise<number> {
  if (role === undefined || !ROLES.includes(role as Role)) throw new FacefleetError('usage', `--role must be one of ${ROLES.join(', ')}`);
  const hub = await Hub.openStore(config);
  try {
    const k = await hub.keys.create(role as Role);
    io.out(k.key);
    io.err(`created an API key with role ${k.role} (id ${k.id}); it is shown only this once`);
    return 0;
  } finally {
    await hub.store.close();
  }
}

/** Password and ACL files for an external Mosquitto, from the devices in the store. */
async function brokerConfig(config: HubConfig, values: { out?: string | undefined; 'hub-username'?: string | undefined; 'hub-password'?: string | undefined; 'broker-port'?: string | undefined }, io: HubIo): Promise<number> {
  const username = values['hub-username'] ?? config.mqttUsername;
  const password = values['hub-password'] ?? config.mqttPassword;
  if (values.out === undefined) throw new FacefleetError('usage', '--out <dir> is required (where passwd, acl and mosquitto.conf are written)');
  if (username === undefined || password === undefined) throw new FacefleetError('usage', '--hub-username and --hub-password (or mqttUsername/mqttPassword in the config) name the hub\'s own broker account');
  const port = values['broker-port'] === undefined ? undefined : Number(values['broker-port']);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new FacefleetError('usage', `--broker-port must be a port number, got "${values['broker-port']}"`);
  const hub = await Hub.openStore(config);
  try {
    const r = await writeBrokerConfig(hub.store, values.out, { username, password }, port !== undefined ? { port } : {});
    io.out(r.files.join('\n'));
    io.err(`wrote the broker's files for ${r.devices} devices and the hub user ${username}${r.skipped.length > 0 ? `; skipped ${r.skipped.length} devices registered before broker hashes were kept (give them new credentials): ${r.skipped.join(', ')}` : ''}; send Mosquitto SIGHUP to reload them`);
    return 0;
  } finally {
    await hub.store.close();
  }
}

/** Copy the SQLite hub in --data-dir into the PostgreSQL database at --database-url. */
async function migrate(config: HubConfig, io: HubIo): Promise<number> {
  if (config.databaseUrl === undefined) throw new FacefleetError('usage', 'migrate needs --database-url <postgres url> (the target) and --data-dir <dir> (the SQLite hub)');
  const { copySqliteToPostgres } = await import('./store/copy.js');
  const counts = await copySqliteToPostgres(join(config.dataDir, 'hub.db'), config.databaseUrl, {
    log: (m) => io.err(`migrate: ${m}`),
    ...(config.databaseSchema !== undefined ? { schema: config.databaseSchema } : {}),
  });
  io.out(JSON.stringify(counts));
  io.err(
    `migrate: done. Start the hub with --database-url and the same --data-dir (it holds the signing key, crop key and uploaded models), or copy signing-key.pem, crop-key and models/ to the new hub's data dir`,
  );
  return 0;
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
  io.err(`facefleet hub: listening on ${base} (API ${base}/api/v1, docs ${base}/api/docs), MQTT ${hub.broker.url}, data ${hub.store.location}`);
  await stopped;
  await http.app.close();
  await hub.close();
  return 0;
}
