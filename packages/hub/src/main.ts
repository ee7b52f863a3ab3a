import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, FacefleetError } from '@facefleet/protocol';
import { isExplicit, loadHubConfig, type HubConfig } from './config.js';
import type { INestApplication } from '@nestjs/common';
import { startHttp } from './http/app.js';
import { Hub } from './hub.js';
import { join } from 'node:path';
import { writeBrokerConfig } from './mqtt/mosquitto.js';
import { openStore, sqliteFile } from './store/open.js';
import { ROLES, type HubStore, type Role } from './store/ports.js';

const USAGE = `usage: facefleet hub [--config hub.yaml] [--port <http>] [--mqtt-port <mqtt>] [--data-dir <dir>] [--host <addr>]
                     [--database-url <postgres url>] [--database-schema <name>] [--mqtt-url <url>]
       facefleet hub create-key (--data-dir <dir> | --database-url <url>) --role admin|operator|viewer
       facefleet hub broker-config --out <dir> (--data-dir <dir> | --database-url <url>) --hub-username <name> --hub-password <secret> [--broker-port <port>] [--force]
       facefleet hub migrate --data-dir <dir with hub.db> --database-url <url> [--database-schema <name>]   (copy a SQLite hub into PostgreSQL)
Exit codes: 0 success, 2 bad flags, config or usage, 1 anything else (a taken port, an unreachable database or broker).`;

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
  help: { type: 'boolean', short: 'h' },
  force: { type: 'boolean' },
} as const;

const VERBS = ['create-key', 'broker-config', 'migrate'] as const;

/** `facefleet hub …`; returns the exit code. */
export async function hubMain(argv: string[], io: HubIo = stdio): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    let message = (err as Error).message.split('\n')[0] ?? '';
    // parseArgs reads `--port -1` as an option where a value was expected.
    const ambiguous = /^Option '(--[a-z-]+)' argument is ambiguous/.exec(message);
    if (ambiguous) message = `${ambiguous[1]!}: a value starting with "-" is not allowed here (a negative number?)`;
    io.err(`facefleet hub: ${message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    io.out(USAGE);
    return 0;
  }
  const verb = positionals[0];
  if (verb !== undefined && !(VERBS as readonly string[]).includes(verb)) {
    io.err(`facefleet hub: unknown verb "${verb}" (hub verbs: ${VERBS.join(', ')}; none starts the hub)\n${USAGE}`);
    return 2;
  }
  if (positionals.length > 1) {
    io.err(`facefleet hub: unexpected argument "${positionals[1] ?? ''}"\n${USAGE}`);
    return 2;
  }
  let config: HubConfig;
  try {
    const flags: Partial<Record<keyof HubConfig, string>> = {};
    if (values.port !== undefined) flags.port = values.port;
    if (values['mqtt-port'] !== undefined) flags.mqttPort = values['mqtt-port'];
    if (values['data-dir'] !== undefined) flags.dataDir = values['data-dir'];
    if (values['mqtt-url'] !== undefined) flags.mqttUrl = values['mqtt-url'];
    if (values.host !== undefined) flags.host = values.host;
    if (values['database-url'] !== undefined) flags.databaseUrl = values['database-url'];
    if (values['database-schema'] !== undefined) flags.databaseSchema = values['database-schema'];
    config = loadHubConfig(flags, values.config);
  } catch (err) {
    // Flags, the config file and FACEFLEET_HUB_* are the caller's input.
    io.err(`facefleet hub: ${(err as Error).message.split('\n')[0] ?? ''}`);
    return 2;
  }
  try {
    if ((verb === 'create-key' || verb === 'broker-config') && config.databaseUrl === undefined && !isExplicit(config, 'dataDir')) {
      throw new FacefleetError('usage', `${verb} needs the hub's store: --data-dir <dir> (a SQLite hub) or --database-url <url>`);
    }
    if (verb === 'create-key') return await createKey(config, values.role, io);
    if (verb === 'broker-config') return await brokerConfig(config, values, io);
    if (verb === 'migrate') return await migrate(config, io);
    // A port set by a flag, the config file or the environment must be free; only a default falls back.
    return await serve(config, { portGiven: isExplicit(config, 'port'), mqttPortGiven: isExplicit(config, 'mqttPort') }, io);
  } catch (err) {
    io.err(`facefleet hub: ${(err as Error).message.split('\n')[0] ?? ''}`);
    return err instanceof FacefleetError && err.code === 'usage' ? 2 : 1;
  }
}

/**
 * The store alone, for the admin verbs. On SQLite the data dir holds it. On PostgreSQL these verbs
 * need no data dir (they read no face crops, so the store gets a throwaway crop key) and create
 * none unless one is named (--data-dir, dataDir or FACEFLEET_HUB_DATA_DIR): then they prepare it
 * (signing and crop keys) as a hub would, so replicas sharing it never race to create the keys.
 */
async function openAdminStore(config: HubConfig): Promise<HubStore> {
  if (config.databaseUrl !== undefined && !isExplicit(config, 'dataDir')) return openStore(config, randomBytes(32), () => undefined);
  return (await Hub.openStore(config)).store;
}

async function createKey(config: HubConfig, role: string | undefined, io: HubIo): Promise<number> {
  if (role === undefined || !ROLES.includes(role as Role)) throw new FacefleetError('usage', `--role must be one of ${ROLES.join(', ')}`);
  const store = await openAdminStore(config);
  try {
    const k = await store.keys.create(role as Role);
    io.out(k.key);
    io.err(`created an API key with role ${k.role} (id ${k.id}); it is shown only this once`);
    return 0;
  } finally {
    await store.close();
  }
}

/** Password and ACL files for an external Mosquitto, from the devices in the store. */
async function brokerConfig(config: HubConfig, values: { out?: string | undefined; 'hub-username'?: string | undefined; 'hub-password'?: string | undefined; 'broker-port'?: string | undefined; force?: boolean | undefined }, io: HubIo): Promise<number> {
  const username = values['hub-username'] ?? config.mqttUsername;
  const password = values['hub-password'] ?? config.mqttPassword;
  if (values.out === undefined || values.out === '') throw new FacefleetError('usage', '--out <dir> is required (where passwd, acl and mosquitto.conf are written)');
  if (username === undefined || password === undefined) throw new FacefleetError('usage', "--hub-username and --hub-password (or mqttUsername/mqttPassword in the config) name the hub's own broker account");
  if (username === '' || password === '') throw new FacefleetError('usage', '--hub-username and --hub-password must not be empty');
  const rawPort = values['broker-port'];
  if (rawPort !== undefined && (!/^[0-9]{1,5}$/.test(rawPort) || Number(rawPort) < 1 || Number(rawPort) > 65535)) {
    throw new FacefleetError('usage', `--broker-port must be a port number from 1 to 65535, got "${rawPort}"`);
  }
  if (config.databaseUrl === undefined && !existsSync(sqliteFile(config))) {
    throw new FacefleetError('usage', `no hub at ${sqliteFile(config)} (a wrong --data-dir?): broker-config reads the devices of an existing hub`);
  }
  const store = await openAdminStore(config);
  try {
    // Files naming devices replaced by files naming none: most likely the wrong store (a typo in
    // --data-dir or --database-schema), and after the SIGHUP no device could log in.
    const previous = devicesIn(join(values.out, 'passwd'), username);
    if (previous > 0 && (await store.devices.brokerAccounts()).length === 0 && values.force !== true) {
      throw new FacefleetError('usage', `${config.databaseUrl !== undefined ? 'that database' : config.dataDir} has no devices, but ${join(values.out, 'passwd')} lists ${previous}: wrong store? (--force writes the files anyway, locking every device out)`);
    }
    const r = await writeBrokerConfig(store, values.out, { username, password }, rawPort !== undefined ? { port: Number(rawPort) } : {});
    io.out(r.files.join('\n'));
    const conf = r.confKept ? `; kept your ${r.conf} (delete it to have it written again${rawPort !== undefined ? `, e.g. for --broker-port ${rawPort}` : ''})` : '';
    io.err(
      `wrote the broker's files for ${r.devices} devices and the hub user ${username}${conf}${r.skipped.length > 0 ? `; skipped ${r.skipped.length} devices registered before broker hashes were kept (give them new credentials): ${r.skipped.join(', ')}` : ''}; send Mosquitto SIGHUP to reload them`,
    );
    return 0;
  } catch (err) {
    // A bad account name, or an --out that cannot be written: the caller's input.
    if (err instanceof RangeError) throw new FacefleetError('usage', err.message);
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== undefined && ['EEXIST', 'ENOTDIR', 'EACCES', 'EPERM', 'EROFS', 'EISDIR'].includes(code)) {
      throw new FacefleetError('usage', `cannot write the broker's files in --out ${values.out}: ${code === 'EEXIST' || code === 'ENOTDIR' ? 'a file is in the way (it must be a directory)' : (err as Error).message}`);
    }
    throw err;
  } finally {
    await store.close();
  }
}

/** Device accounts in an existing Mosquitto password file (0 when there is none). */
function devicesIn(passwd: string, hubUser: string): number {
  try {
    return readFileSync(passwd, 'utf8')
      .split('\n')
      .filter((line) => line.includes(':') && !line.startsWith(`${hubUser}:`) && !line.startsWith('#')).length;
  } catch {
    return 0;
  }
}

/** Copy the SQLite hub in --data-dir into the PostgreSQL database at --database-url. */
async function migrate(config: HubConfig, io: HubIo): Promise<number> {
  if (config.databaseUrl === undefined) throw new FacefleetError('usage', 'migrate needs --database-url <postgres url> (the target) and --data-dir <dir> (the SQLite hub)');
  if (!existsSync(sqliteFile(config))) throw new FacefleetError('usage', `no SQLite hub database at ${sqliteFile(config)} (migrate copies the hub in --data-dir)`);
  const { copySqliteToPostgres } = await import('./store/copy.js');
  const counts = await copySqliteToPostgres(sqliteFile(config), config.databaseUrl, {
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
  const schema = config.databaseUrl !== undefined && config.databaseSchema !== undefined ? ` schema ${config.databaseSchema}` : '';
  io.err(`facefleet hub: listening on ${base} (API ${base}/api/v1, docs ${base}/api/docs), MQTT ${hub.broker.url}, data ${hub.store.location}${schema}`);
  await stopped;
  await http.app.close();
  await hub.close();
  return 0;
}
