import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '@facefleet/protocol';
import type { HubStore } from '../store/ports.js';
import { mosquittoAuthFiles, mosquittoConf, writeBrokerConfig, type BrokerAccount } from './mosquitto.js';
import { mosquittoPasswordHash } from './mosquitto-hash.js';

/** Every wait on the broker is bounded by this; each normally ends in milliseconds, on an event. */
const WAIT_MS = 5000;
/** Reason code Mosquitto 2.0.11 answers a refused login and a refused QoS 1 publish with (MQTT v5). */
const NOT_AUTHORIZED = 0x87;

/** The mosquitto binary, looked up on PATH and in the sbin directories PATH often lacks. */
function findMosquitto(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/opt/homebrew/sbin'];
  for (const d of dirs) {
    if (d === '') continue;
    try {
      accessSync(join(d, 'mosquitto'), constants.X_OK);
      return join(d, 'mosquitto');
    } catch {
      // not here
    }
  }
  return undefined;
}

const MOSQUITTO = findMosquitto();
if (MOSQUITTO === undefined && !process.env.CI) console.log('SKIPPED: mosquitto is not installed (apt-get install mosquitto): the generated broker files are not exercised');

describe('mosquittoAuthFiles', () => {
  const hub = { username: 'hub', passwordHash: mosquittoPasswordHash('hub-secret') };

  it('lists the hub user, then every device with a hash in id order, and names the skipped ones', () => {
    const f = mosquittoAuthFiles(
      [
        { id: 'dev-b', brokerHash: mosquittoPasswordHash('b'), galleries: ['g2', 'default', 'g2'] },
        { id: 'dev-old', brokerHash: null, galleries: ['default'] },
        { id: 'dev-a', brokerHash: mosquittoPasswordHash('a'), galleries: ['default'] },
      ],
      hub,
    );
    expect(f.skipped).toEqual(['dev-old']);
    expect(f.passwordFile.split('\n').map((l) => l.split(':')[0])).toEqual(['hub', 'dev-a', 'dev-b', '']);
    const b = f.aclFile.slice(f.aclFile.indexOf('user dev-b'));
    expect(b.split('\n').filter((l) => l.startsWith('topic '))).toEqual([
      'topic write facefleet/v1/devices/dev-b/state',
      'topic write facefleet/v1/devices/dev-b/events',
      'topic write facefleet/v1/devices/dev-b/status',
      'topic write facefleet/v1/devices/dev-b/sync/request',
      'topic write facefleet/v1/devices/dev-b/models',
      'topic read facefleet/v1/devices/dev-b/acks',
      'topic read facefleet/v1/devices/dev-b/sync/changes',
      'topic read facefleet/v1/devices/dev-b/config',
      'topic read facefleet/v1/galleries/default/head',
      'topic read facefleet/v1/galleries/g2/head',
    ]);
    expect(f.aclFile).toContain('user hub\ntopic readwrite facefleet/v1/#\n');
    expect(f.aclFile).not.toMatch(/^user dev-old$/m);
    expect(f.aclFile).not.toMatch(/^pattern /m);
  });

  it('refuses names that would change the meaning of the files, and a device named like the hub', () => {
    const ok = mosquittoPasswordHash('x');
    expect(() => mosquittoAuthFiles([{ id: 'dev a', brokerHash: ok, galleries: [] }], hub)).toThrow(/device id "dev a"/);
    expect(() => mosquittoAuthFiles([{ id: 'dev:a', brokerHash: ok, galleries: [] }], hub)).toThrow(/cannot be written/);
    expect(() => mosquittoAuthFiles([{ id: 'dev-a', brokerHash: ok, galleries: ['#'] }], hub)).toThrow(/gallery id/);
    expect(() => mosquittoAuthFiles([{ id: 'hub', brokerHash: ok, galleries: [] }], hub)).toThrow(/hub's own broker username/);
    expect(() => mosquittoAuthFiles([{ id: 'dev-a', brokerHash: 'plain', galleries: [] }], hub)).toThrow(/not a Mosquitto password hash/);
  });
});

// In CI a missing broker must fail, not pass as skipped.
describe.runIf(MOSQUITTO === undefined && Boolean(process.env.CI))('mosquitto in CI', () => {
  it('is installed', () => {
    expect.fail('mosquitto is not installed but CI is set: install it (apt-get install mosquitto) so the generated broker files are tested');
  });
});

interface Msg {
  topic: string;
  payload: string;
}

/** Messages a client received, with bounded, event-driven waits. */
class Inbox {
  readonly messages: Msg[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly name: string,
    client: MqttClient,
  ) {
    client.on('message', (topic, payload) => {
      this.messages.push({ topic, payload: payload.toString('utf8') });
      for (const w of [...this.waiters]) w();
    });
  }

  on(topic: string): string[] {
    return this.messages.filter((m) => m.topic === topic).map((m) => m.payload);
  }

  /** Resolves once a message on `topic` with `payload` has arrived (or had already). */
  waitFor(topic: string, payload: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => this.messages.some((m) => m.topic === topic && m.payload === payload);
      if (check()) return resolve();
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`${this.name} did not receive "${payload}" on ${topic} within ${WAIT_MS} ms (got: ${JSON.stringify(this.messages)})`));
      }, WAIT_MS);
      const waiter = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve();
      };
      this.waiters.add(waiter);
    });
  }
}

/** Resolves when the client's connection closes; rejects after WAIT_MS with `what`. */
function closed(client: MqttClient, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} within ${WAIT_MS} ms`)), WAIT_MS);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

describe.runIf(MOSQUITTO !== undefined)('generated Mosquitto files, enforced by a real mosquitto (MQTT v5)', () => {
  const secret = (): string => randomBytes(18).toString('base64url');
  const hubUser = { username: 'facefleet-hub', password: secret() };
  const A = { id: 'dev-a', secret: secret() };
  const B = { id: 'dev-b', secret: secret() };
  const OLD = { id: 'dev-old', secret: secret() };
  const accounts = (): BrokerAccount[] => [
    { id: A.id, brokerHash: mosquittoPasswordHash(A.secret), galleries: ['default'] },
    { id: B.id, brokerHash: mosquittoPasswordHash(B.secret), galleries: ['g2'] },
    { id: OLD.id, brokerHash: null, galleries: ['default'] },
  ];
  /** A stand-in store: the generator only reads brokerAccounts(). */
  const storeOf = (list: BrokerAccount[]): Pick<HubStore, 'devices'> => ({
    devices: { brokerAccounts: () => Promise.resolve(list.map((a) => ({ ...a, galleries: [...a.galleries] }))) } as Partial<HubStore['devices']> as HubStore['devices'],
  });

  let dir: string;
  let url: string;
  let broker: ChildProcess;
  let log = '';
  let version = '';
  const clients: MqttClient[] = [];

  const options = (username: string, password: string, clientId = username): IClientOptions => ({ username, password, clientId, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: WAIT_MS });
  async function connect(username: string, password: string, clientId?: string): Promise<MqttClient> {
    const c = await mqtt.connectAsync(url, options(username, password, clientId));
    clients.push(c);
    return c;
  }
  /** The CONNACK reason code of a refused login (the test fails if the login succeeds). */
  async function refusal(username: string, password: string): Promise<number | undefined> {
    try {
      const c = await mqtt.connectAsync(url, options(username, password));
      await c.endAsync();
    } catch (err) {
      return (err as { code?: number }).code;
    }
    throw new Error(`mosquitto accepted ${username}'s login`);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'facefleet-mosquitto-'));
    const port = await freePort();
    url = `mqtt://127.0.0.1:${port}`;
    const written = await writeBrokerConfig(storeOf(accounts()), dir, hubUser, { port });
    expect(written).toEqual({ files: ['passwd', 'acl', 'mosquitto.conf'].map((f) => join(dir, f)), conf: join(dir, 'mosquitto.conf'), confKept: false, devices: 2, skipped: [OLD.id] });
    expect(statSync(join(dir, 'passwd')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'passwd'), 'utf8')).not.toContain(hubUser.password);
    expect(readFileSync(join(dir, 'mosquitto.conf'), 'utf8')).toContain(`listener ${port}\n`);
    writeFileSync(join(dir, 'mosquitto.conf'), `${readFileSync(join(dir, 'mosquitto.conf'), 'utf8')}# operator: TLS listener here\n`);
    // Loopback only for the test, and no privilege drop: run as whoever runs the tests (as root,
    // mosquitto would otherwise switch to its own user, which cannot read the 0600 passwd).
    writeFileSync(join(dir, 'test.conf'), `${mosquittoConf({ port, host: '127.0.0.1', dir })}user ${userInfo().username}\n`);
    broker = spawn(MOSQUITTO!, ['-c', join(dir, 'test.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`mosquitto did not start within ${WAIT_MS} ms:\n${log}`)), WAIT_MS);
      broker.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`mosquitto exited with ${code} at start:\n${log}`));
      });
      broker.stderr!.on('data', (d: Buffer) => {
        log += d.toString('utf8');
        version = /mosquitto version (\S+) starting/.exec(log)?.[1] ?? version;
        if (/mosquitto version \S+ running/.test(log)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    if (broker !== undefined && broker.exitCode === null && broker.signalCode === null) {
      const exited = new Promise<void>((r) => broker.once('exit', () => r()));
      broker.kill('SIGTERM');
      const timer = setTimeout(() => broker.kill('SIGKILL'), WAIT_MS);
      await exited;
      clearTimeout(timer);
    }
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * SUBACK for a filter the ACL does not let the client read: Mosquitto 2.0.x grants it (QoS 1,
   * reason 0x01) and withholds the messages at delivery; a later version may refuse it (0x87).
   */
  function expectGrantedThoughDenied(qos: number | undefined): void {
    if (version.startsWith('2.0.')) expect(qos).toBe(1);
    else expect([1, NOT_AUTHORIZED]).toContain(qos);
  }

  it('runs Mosquitto 2', () => {
    expect(version).toMatch(/^2\./);
  });

  it('refuses a wrong password, an unknown user and a device without a broker hash', async () => {
    // Mosquitto 2.0.11 answers each with CONNACK 0x87 "Not authorized" (not 0x86 "Bad user name or password").
    expect(await refusal(A.id, 'not-the-secret')).toBe(NOT_AUTHORIZED);
    expect(await refusal('dev-nobody', A.secret)).toBe(NOT_AUTHORIZED);
    expect(await refusal(OLD.id, OLD.secret)).toBe(NOT_AUTHORIZED);
    expect(await refusal(hubUser.username, A.secret)).toBe(NOT_AUTHORIZED);
  });

  let hub1: Inbox;
  let hub2: Inbox;
  let observer: Inbox;
  let hubClient: MqttClient;
  let a: MqttClient;
  let b: MqttClient;
  let aInbox: Inbox;
  let bInbox: Inbox;

  it('delivers each of a device\'s events to exactly one hub replica through the shared subscription', async () => {
    const share = `$share/facefleet-hub/${topics.allDevices('events')}`;
    const replicas = [await connect(hubUser.username, hubUser.password, 'hub-replica-1'), await connect(hubUser.username, hubUser.password, 'hub-replica-2')];
    [hub1, hub2] = replicas.map((c, i) => new Inbox(`hub replica ${i + 1}`, c)) as [Inbox, Inbox];
    for (const r of replicas) expect(await r.subscribeAsync(share, { qos: 1 })).toEqual([expect.objectContaining({ topic: share, qos: 1 })]);
    // One plain subscriber of everything under the root: the single ordered view for negative checks.
    hubClient = await connect(hubUser.username, hubUser.password, 'hub-observer');
    observer = new Inbox('hub observer', hubClient);
    expect((await hubClient.subscribeAsync('facefleet/v1/#', { qos: 1 }))[0]?.qos).toBe(1);

    a = await connect(A.id, A.secret);
    aInbox = new Inbox('device A', a);
    const sent = Array.from({ length: 10 }, (_, i) => `event-${i}`);
    for (const p of sent) await a.publishAsync(topics.events(A.id), p, { qos: 1 });
    await Promise.all(sent.map((p) => observer.waitFor(topics.events(A.id), p)));
    const shared = (): string[] => [...hub1.on(topics.events(A.id)), ...hub2.on(topics.events(A.id))];
    await Promise.all(sent.flatMap((p) => (shared().includes(p) ? [] : [Promise.race([hub1.waitFor(topics.events(A.id), p), hub2.waitFor(topics.events(A.id), p)])])));
    expect(shared().sort()).toEqual([...sent].sort()); // each once, none twice
    expect(hub1.on(topics.events(A.id)).length).toBeGreaterThan(0); // both replicas take a share
    expect(hub2.on(topics.events(A.id)).length).toBeGreaterThan(0);
  });

  it('lets a device publish every device-to-hub kind on its own topics (state retained)', async () => {
    await a.publishAsync(topics.state(A.id), 'online', { qos: 1, retain: true });
    for (const t of [topics.status, topics.syncRequest, topics.models]) await a.publishAsync(t(A.id), 'ok', { qos: 1 });
    await observer.waitFor(topics.state(A.id), 'online');
    for (const t of [topics.status, topics.syncRequest, topics.models]) await observer.waitFor(t(A.id), 'ok');
  });

  it('refuses a device publishing as another device or on hub-to-device topics, and keeps its connection', async () => {
    b = await connect(B.id, B.secret);
    bInbox = new Inbox('device B', b);
    const forbidden = [topics.events(B.id), topics.state(B.id), topics.acks(A.id), topics.config(A.id), topics.syncChanges(A.id), topics.galleryHead('default'), 'elsewhere/x'];
    for (const t of forbidden) {
      // QoS 1: Mosquitto 2.0.11 answers PUBACK 0x87 "Not authorized" (mqtt.js rejects the publish).
      await expect(a.publishAsync(t, 'forged', { qos: 1 }), t).rejects.toMatchObject({ code: NOT_AUTHORIZED });
      // QoS 0 has no answer: it is dropped without a word.
      await a.publishAsync(t, 'forged-qos0', { qos: 0 });
    }
    expect(a.connected).toBe(true);
    // A's own event, published after the forged ones, reaches the observer: anything forged would be there before it.
    await a.publishAsync(topics.events(A.id), 'after-forgery', { qos: 1 });
    await observer.waitFor(topics.events(A.id), 'after-forgery');
    for (const t of forbidden) expect(observer.on(t), t).toEqual([]);
  });

  it('grants a subscription to another device\'s acks but never delivers them', async () => {
    expect((await b.subscribeAsync(topics.acks(B.id), { qos: 1 }))[0]?.qos).toBe(1);
    // Mosquitto 2.0.11 checks `read` when it delivers, not when it subscribes: SUBACK grants QoS 1
    // (reason 0x01) even to a denied filter or a wildcard; the messages are then withheld.
    const granted = await a.subscribeAsync([topics.acks(B.id), 'facefleet/v1/devices/+/acks'], { qos: 1 });
    expect(granted).toHaveLength(2);
    for (const g of granted) expectGrantedThoughDenied(g.qos);
    await hubClient.publishAsync(topics.acks(B.id), '{"ids":["for-b"]}', { qos: 1 });
    await hubClient.publishAsync(topics.acks(A.id), '{"ids":["for-a"]}', { qos: 1 });
    await bInbox.waitFor(topics.acks(B.id), '{"ids":["for-b"]}');
    // Same publisher, same subscriber: A's own ack comes after B's would have.
    await aInbox.waitFor(topics.acks(A.id), '{"ids":["for-a"]}');
    expect(aInbox.on(topics.acks(B.id))).toEqual([]);
    expect(bInbox.on(topics.acks(A.id))).toEqual([]);
  });

  it('lets each device read only the heads of its own galleries, retained and live', async () => {
    const defaultHead = topics.galleryHead('default');
    const g2Head = topics.galleryHead('g2');
    await hubClient.publishAsync(defaultHead, 'default@1', { qos: 1, retain: true });
    await hubClient.publishAsync(g2Head, 'g2@1', { qos: 1, retain: true });
    for (const [dev, inbox, own, other, retained] of [
      [a, aInbox, defaultHead, g2Head, 'default@1'],
      [b, bInbox, g2Head, defaultHead, 'g2@1'],
    ] as const) {
      // The forbidden head first: its retained message, were it sent, would come before the allowed one's.
      expectGrantedThoughDenied((await dev.subscribeAsync(other, { qos: 1 }))[0]?.qos);
      expect((await dev.subscribeAsync(own, { qos: 1 }))[0]?.qos).toBe(1);
      await inbox.waitFor(own, retained);
    }
    // Live updates, one publisher: each device's awaited message comes after the one it must not get.
    await hubClient.publishAsync(g2Head, 'g2@2', { qos: 1, retain: true });
    await hubClient.publishAsync(defaultHead, 'default@2', { qos: 1, retain: true });
    await hubClient.publishAsync(g2Head, 'g2@3', { qos: 1, retain: true });
    await aInbox.waitFor(defaultHead, 'default@2');
    await bInbox.waitFor(g2Head, 'g2@3');
    expect(aInbox.on(defaultHead)).toEqual(['default@1', 'default@2']);
    expect(aInbox.on(g2Head)).toEqual([]);
    expect(bInbox.on(g2Head)).toEqual(['g2@1', 'g2@2', 'g2@3']);
    expect(bInbox.on(defaultHead)).toEqual([]);
  });

  it('lets the hub publish acks, sync changes and a retained config to a device', async () => {
    await hubClient.publishAsync(topics.config(A.id), '{"galleries":["default"]}', { qos: 1, retain: true });
    await a.subscribeAsync([topics.syncChanges(A.id), topics.config(A.id)], { qos: 1 });
    await aInbox.waitFor(topics.config(A.id), '{"galleries":["default"]}'); // retained, delivered on subscribe
    await hubClient.publishAsync(topics.syncChanges(A.id), '{"changes":[]}', { qos: 1 });
    await hubClient.publishAsync(topics.acks(A.id), '{"ids":["e1"]}', { qos: 1 });
    await aInbox.waitFor(topics.syncChanges(A.id), '{"changes":[]}');
    await aInbox.waitFor(topics.acks(A.id), '{"ids":["e1"]}');
  });

  it('after regenerating without a revoked device and SIGHUP, drops its connection and refuses its login', async () => {
    const aClosed = closed(a, 'device A was not disconnected after the reload');
    const written = await writeBrokerConfig(storeOf(accounts().filter((x) => x.id !== A.id)), dir, hubUser);
    expect(written.devices).toBe(1);
    // The operator's mosquitto.conf (here with a line of their own) is kept; passwd and acl are replaced.
    expect(written.confKept).toBe(true);
    expect(written.files).toEqual([join(dir, 'passwd'), join(dir, 'acl')]);
    expect(readFileSync(join(dir, 'mosquitto.conf'), 'utf8')).toContain('# operator: TLS listener here\n');
    expect(readFileSync(join(dir, 'passwd'), 'utf8')).not.toMatch(/^dev-a:/m);
    expect(readFileSync(join(dir, 'acl'), 'utf8')).not.toContain('dev-a');
    broker.kill('SIGHUP');
    await aClosed; // Mosquitto 2.0.11 re-checks connected clients on reload and closes A's socket
    expect(await refusal(A.id, A.secret)).toBe(NOT_AUTHORIZED);
    // Everyone else keeps working, the hub included (its password hash was regenerated too).
    expect(b.connected).toBe(true);
    await b.publishAsync(topics.events(B.id), 'still-here', { qos: 1 });
    await observer.waitFor(topics.events(B.id), 'still-here');
    const again = await connect(hubUser.username, hubUser.password, 'hub-after-reload');
    expect(again.connected).toBe(true);
  });
});
