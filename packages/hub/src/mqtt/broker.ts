import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { ConfigError, isUsableUrl, parseDeviceTopic, redactUrl, TOPIC_ROOT } from '@facefleet/protocol';

export type Handler = (topic: string, payload: Buffer) => void;

/** What the hub needs from a broker; one embedded (aedes) and one external (mqtt.js) implementation. */
export interface BrokerPort {
  readonly url: string;
  /** The hub's own link to the broker is up (always, for the embedded one). */
  readonly connected: boolean;
  publish(topic: string, payload: string | Buffer, opts?: { retain?: boolean; qos?: 0 | 1 }): Promise<void>;
  subscribe(pattern: string, handler: Handler): Promise<void>;
  /** Cut a device's live connection (after revocation). */
  disconnect(clientId: string): void;
  close(): Promise<void>;
}

/** Device access rules, enforced by the embedded broker; an external broker needs the same ACL (README). */
export interface DeviceAccess {
  verify(deviceId: string, secret: string): Promise<boolean>;
  galleries(deviceId: string): Promise<string[]>;
}

const DEVICE_PUBLISH = new Set(['state', 'events', 'status', 'sync/request', 'models']);
const DEVICE_SUBSCRIBE = new Set(['acks', 'sync/changes', 'config']);

/** May this device publish on this topic? Only its own device topics; retain only its state. */
export function devicePublishAllowed(deviceId: string, topic: string, retain: boolean): boolean {
  const t = parseDeviceTopic(topic);
  if (!t || t.deviceId !== deviceId || !DEVICE_PUBLISH.has(t.kind)) return false;
  return !retain || t.kind === 'state';
}

/** May this device subscribe to this filter? Its own inbound topics and its galleries' heads; no wildcards. */
export function deviceSubscribeAllowed(deviceId: string, filter: string, galleries: readonly string[]): boolean {
  if (filter.includes('+') || filter.includes('#')) return false;
  const t = parseDeviceTopic(filter);
  if (t) return t.deviceId === deviceId && DEVICE_SUBSCRIBE.has(t.kind);
  const m = new RegExp(`^${TOPIC_ROOT}/galleries/([^/]+)/head$`).exec(filter);
  return m !== null && galleries.includes(m[1]!);
}

export class EmbeddedBroker implements BrokerPort {
  private constructor(
    private readonly aedes: Aedes,
    private readonly server: Server,
    readonly port: number,
    readonly host: string,
    private readonly sockets: Set<Socket>,
    private readonly tls: boolean,
  ) {}

  get url(): string {
    return `${this.tls ? 'mqtts' : 'mqtt'}://${this.host}:${this.port}`;
  }

  readonly connected = true;

  /** `tls`: PEM files of the broker's certificate and key; devices then connect with mqtts://. */
  static async start(port: number, host: string, access: DeviceAccess, log: (msg: string) => void, tls?: { cert: string; key: string }): Promise<EmbeddedBroker> {
    let credentials: { cert: Buffer; key: Buffer } | undefined;
    if (tls !== undefined) {
      try {
        credentials = { cert: readFileSync(tls.cert), key: readFileSync(tls.key) };
      } catch (err) {
        throw new ConfigError(`cannot read the MQTT TLS certificate or key: ${(err as Error).message}`);
      }
    }
    const aedes = await Aedes.createBroker({
      authenticate: (client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean) => void) => {
        const refuse = (): void => {
          const err = new Error('bad username or password') as AuthenticateError;
          err.returnCode = 4;
          log(`mqtt: refused ${client.id}`);
          done(err, false);
        };
        if (username === undefined || username !== client.id || password === undefined) return refuse();
        access.verify(username, password.toString('utf8')).then(
          (ok) => (ok ? done(null, true) : refuse()),
          (err: Error) => {
            log(`mqtt: cannot check ${client.id}'s credentials: ${err.message}`);
            refuse();
          },
        );
      },
      authorizePublish: (client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void) => {
        if (client === null) return done(null); // the hub itself
        if (devicePublishAllowed(client.id, packet.topic, packet.retain)) return done(null);
        log(`mqtt: ${client.id} may not publish on ${packet.topic}`);
        done(new Error('not authorised'));
      },
      authorizeSubscribe: (client: Client | null, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void) => {
        if (client === null) return done(null, sub);
        const deny = (): void => {
          log(`mqtt: ${client.id} may not subscribe to ${sub.topic}`);
          done(null, null); // SUBACK failure, connection kept
        };
        access.galleries(client.id).then((galleries) => (deviceSubscribeAllowed(client.id, sub.topic, galleries) ? done(null, sub) : deny()), deny);
      },
    });
    const sockets = new Set<Socket>();
    const onSocket = (socket: Socket): void => void aedes.handle(socket);
    let server: Server;
    try {
      server = credentials ? createTlsServer(credentials, onSocket) : createServer(onSocket);
    } catch (err) {
      await new Promise<void>((r) => aedes.close(() => r()));
      throw new ConfigError(`MQTT TLS: ${(err as Error).message}`);
    }
    // Raw connections, TLS handshakes still pending included: close() destroys them all.
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) =>
          reject(err.code === 'EADDRINUSE' ? new ConfigError(`MQTT port ${port} on ${host} is already in use (choose another with --mqtt-port)`) : err),
        );
        server.listen(port, host, () => resolve());
      });
    } catch (err) {
      // aedes runs timers from createBroker on: close it, or a failed start keeps the process alive.
      await new Promise<void>((r) => aedes.close(() => r()));
      throw err;
    }
    return new EmbeddedBroker(aedes, server, (server.address() as AddressInfo).port, host, sockets, credentials !== undefined);
  }

  publish(topic: string, payload: string | Buffer, opts: { retain?: boolean; qos?: 0 | 1 } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      this.aedes.publish({ cmd: 'publish', topic, payload: typeof payload === 'string' ? Buffer.from(payload) : payload, qos: opts.qos ?? 1, retain: opts.retain ?? false, dup: false }, (err?: Error) =>
        err ? reject(err) : resolve(),
      );
    });
  }

  subscribe(pattern: string, handler: Handler): Promise<void> {
    return new Promise((resolve) => {
      this.aedes.subscribe(
        pattern,
        (packet: PublishPacket, cb: () => void) => {
          const topic = packet.topic;
          const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
          cb();
          // Off aedes' stack: a handler that publishes (an ack) would otherwise recurse through
          // aedes once per message and overflow the stack under a burst of events.
          setImmediate(() => handler(topic, payload));
        },
        () => resolve(),
      );
    });
  }

  disconnect(clientId: string): void {
    const client = (this.aedes as unknown as { clients: Record<string, { close(): void } | undefined> }).clients[clientId];
    client?.close();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    await new Promise<void>((r) => this.aedes.close(() => r()));
  }
}

/**
 * Split `mqtt://user:pass@host:port` into a URL without credentials (what the hub logs, shows in
 * /healthz and hands to devices) and the decoded credentials (what only the hub's own client uses).
 */
export function splitBrokerCredentials(url: string): { url: string; username?: string; password?: string } {
  if (!isUsableUrl(url)) throw new ConfigError(`mqttUrl is not a valid URL: ${redactUrl(url)}`);
  const parsed = new URL(url);
  if (parsed.username === '' && parsed.password === '') return { url };
  const username = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  parsed.username = '';
  parsed.password = '';
  return { url: parsed.toString().replace(/\/$/, ''), ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

/** An external broker (Mosquitto, EMQX, ...) through an mqtt.js client with the hub's own credentials. */
export class ExternalBroker implements BrokerPort {
  private readonly handlers: { pattern: string; handler: Handler }[] = [];
  private constructor(
    private readonly client: MqttClient,
    readonly url: string,
    private readonly shareGroup?: string,
  ) {
    client.on('message', (topic, payload) => {
      for (const h of this.handlers) if (matches(h.pattern, topic)) h.handler(topic, payload);
    });
  }

  /**
   * `shareGroup`: device topics are subscribed as MQTT v5 shared subscriptions
   * (`$share/<group>/...`), so with several hub replicas each device message reaches one of them.
   */
  static async connect(url: string, opts: { username?: string; password?: string; clientId: string; shareGroup?: string | undefined }): Promise<ExternalBroker> {
    const { url: bare, username, password } = splitBrokerCredentials(url);
    const user = opts.username || username;
    const pass = opts.password || password;
    try {
      const client = await mqtt.connectAsync(bare, {
        clientId: opts.clientId,
        protocolVersion: 5,
        clean: true,
        reconnectPeriod: 1000,
        ...(user ? { username: user } : {}),
        ...(pass ? { password: pass } : {}),
      });
      return new ExternalBroker(client, bare, opts.shareGroup);
    } catch (err) {
      throw new ConfigError(`cannot connect to MQTT broker ${bare}: ${(err as Error).message.split(pass || '\u0000').join('***')}`);
    }
  }

  get connected(): boolean {
    return this.client.connected;
  }

  async publish(topic: string, payload: string | Buffer, opts: { retain?: boolean; qos?: 0 | 1 } = {}): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: opts.qos ?? 1, retain: opts.retain ?? false });
  }

  async subscribe(pattern: string, handler: Handler): Promise<void> {
    this.handlers.push({ pattern, handler });
    const granted = await this.client.subscribeAsync(this.shareGroup ? `$share/${this.shareGroup}/${pattern}` : pattern, { qos: 1 });
    const refused = granted.find((g) => g.qos > 2);
    if (refused) throw new ConfigError(`MQTT broker ${this.url} refused the hub's subscription to ${refused.topic} (reason ${refused.qos}): check the hub user's ACL`);
  }

  disconnect(): void {
    // An external broker's ACL/auth backend must drop revoked devices (see README).
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}

/** MQTT topic filter match (+ one level, # the rest). */
export function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
