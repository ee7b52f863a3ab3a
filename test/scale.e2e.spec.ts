import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentEvents, startAgent, writeYaml, type AgentProcess } from './agent-process.js';
import { facefleet, json } from './cli.js';
import { data, hasData, hasTool } from './helpers.js';
import { api, startHub, type HubProcess } from './hub-process.js';
import { pgKit, TEST_PG_URL as PG_URL, testSchema } from '../packages/hub/src/store/store.contract.js';

/**
 * Scale-out as an operator runs it: two hub replicas as processes on one PostgreSQL and one
 * Mosquitto (its own, on a free port, with the password and ACL files `facefleet hub
 * broker-config` writes), two agents. One replica is killed in the middle of a run.
 */
const pg = await pgKit();
const pgProblem = typeof pg === 'string' ? pg : undefined;
const dropSchema = async (schema: string): Promise<void> => {
  if (typeof pg !== 'string') await pg.dropSchema(schema);
};
const ready = pgProblem === undefined && hasTool('mosquitto') && hasData('faceapi_bbt') && hasData('edge_demo');
if (!ready) {
  const why = pgProblem !== undefined ? pgProblem : !hasTool('mosquitto') ? 'mosquitto is not installed' : 'the sample data is absent';
  if (process.env.CI) throw new Error(`scale-out e2e cannot run under CI: ${why}`);
  console.warn(`skipping the scale-out e2e: ${why}`);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

interface Device {
  id: string;
  secret: string;
}

describe.runIf(ready)('two hub replicas on PostgreSQL + Mosquitto, two agents, one replica killed', () => {
  const schema = testSchema();
  const hubUser = { username: 'facefleet-hub', password: randomBytes(12).toString('hex') };
  let root: string;
  let brokerDir: string;
  let mosquitto: ChildProcess;
  let mqttUrl: string;
  const replicas: HubProcess[] = [];
  const agents: AgentProcess[] = [];
  const configs: string[] = [];
  const devices: Device[] = [];
  let key: string;
  const dbArgs = ['--database-url', PG_URL, '--database-schema', schema];
  const brokerArgs: string[] = [];

  const on = (i: number) => api(replicas[i]!.base, key);
  const person = (p: string, n: number): string => data('faceapi_bbt', 'identities', p, `${p}${n}.png`);
  async function enrol(via: number, name: string): Promise<string> {
    const s = (await (await on(via).post('/api/v1/subjects', { name })).json()) as { id: string };
    const r = (await (await on(via).upload(`/api/v1/subjects/${s.id}/faces`, [1, 2, 3].map((n) => person(name, n)))).json()) as { results: { status: string }[] };
    expect(r.results.map((x) => x.status)).toEqual(['ok', 'ok', 'ok']);
    return s.id;
  }
  const synced = async (via: number, d: Device): Promise<boolean> => ((await (await on(via).get(`/api/v1/devices/${d.id}`)).json()) as { synced: boolean }).synced;
  const agentSubjects = async (i: number): Promise<string[]> =>
    json<{ subjects: { name: string }[] }>(await facefleet(['subjects', '--gallery', join(root, `agent${i}`, 'data', 'gallery.db'), '--json'])).subjects.map((s) => s.name).sort();

  async function brokerConfig(): Promise<void> {
    // With a data dir named, it is prepared as a hub would (as deploy/compose's one-shot does), so replicas never race for the keys.
    const r = await facefleet(['hub', 'broker-config', '--out', brokerDir, ...dbArgs, '--data-dir', join(root, 'hub-shared'), ...brokerArgs, '--hub-username', hubUser.username, '--hub-password', hubUser.password]);
    expect(r.code, r.stderr).toBe(0);
    expect(['signing-key.pem', 'crop-key'].filter((f) => existsSync(join(root, 'hub-shared', f)))).toEqual(['signing-key.pem', 'crop-key']);
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'facefleet-scale-e2e-'));
    brokerDir = join(root, 'broker');
    const k = await facefleet(['hub', 'create-key', ...dbArgs, '--role', 'admin'], { cwd: root });
    expect(k.code, k.stderr).toBe(0);
    key = k.stdout.trim();
    // On PostgreSQL the admin verbs need no data dir and leave none behind (no stray ./hub-data with keys in it).
    expect(existsSync(join(root, 'hub-data'))).toBe(false);
    const port = await freePort();
    mqttUrl = `mqtt://127.0.0.1:${port}`;
    brokerArgs.push('--broker-port', String(port));
    await brokerConfig();
    // Run as this user: as root, Mosquitto switches to its own user, who cannot read the 0600 passwd written here.
    const conf = join(root, 'mosquitto-test.conf');
    writeFileSync(conf, `${readFileSync(join(brokerDir, 'mosquitto.conf'), 'utf8')}user ${userInfo().username}\n`);
    mosquitto = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    mosquitto.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    await until(() => Promise.resolve(/running/.test(log)), 10_000, `mosquitto to start: ${log}`);
    const hubYaml = writeYaml(join(root, 'hub.yaml'), `mqttUsername: ${hubUser.username}\nmqttPassword: "${hubUser.password}"\nsyncPartBytes: 4096\n`);
    for (let i = 0; i < 2; i++) replicas.push(await startHub(['--port', '0', '--data-dir', join(root, 'hub-shared'), '--mqtt-url', mqttUrl, '--config', hubYaml, ...dbArgs]));
    for (let i = 0; i < 2; i++) devices.push((await (await on(i).post('/api/v1/devices', { name: `door-${i}` })).json()) as Device);
    await brokerConfig();
    mosquitto.kill('SIGHUP');
    for (let i = 0; i < 2; i++) {
      const d = devices[i]!;
      mkdirSync(join(root, `agent${i}`, 'in'), { recursive: true });
      configs.push(
        writeYaml(
          join(root, `agent${i}`, 'agent.yaml'),
          `deviceId: ${d.id}\ndataDir: ${root}/agent${i}/data\nsources:\n  - {type: folder, path: ${root}/agent${i}/in}\nmqtt: {url: "${mqttUrl}", username: ${d.id}, password: "${d.secret}"}\noutbox: {retryMs: 1000}\nstatusIntervalMs: 1000\n`,
        ),
      );
      agents.push(await startAgent(configs[i]!));
    }
  }, 240_000);

  afterAll(async () => {
    for (const a of agents) if (a.proc.exitCode === null) await a.stop('SIGKILL');
    for (const r of replicas) if (r.proc.exitCode === null) await r.stop('SIGKILL');
    mosquitto?.kill('SIGKILL');
    await dropSchema(schema);
    rmSync(root, { recursive: true, force: true });
  });

  it('serves any API call from either replica and syncs an enrolment made on one to both agents', async () => {
    await enrol(1, 'raj');
    await until(async () => (await synced(0, devices[0]!)) && (await synced(0, devices[1]!)), 20_000, 'both agents synced');
    expect(await agentSubjects(0)).toEqual(['raj']);
    expect(await agentSubjects(1)).toEqual(['raj']);
    const a = (await (await on(0).get('/api/v1/subjects')).json()) as { items: { name: string }[] };
    const b = (await (await on(1).get('/api/v1/subjects')).json()) as { items: { name: string }[] };
    expect(a.items.map((s) => s.name)).toEqual(['raj']);
    expect(b).toEqual(a);
  });

  it('has exactly one leader among the replicas', async () => {
    const health = await Promise.all(replicas.map(async (r) => (await (await fetch(`${r.base}/healthz`)).json()) as { leader: boolean; store: string }));
    expect(health.filter((h) => h.leader)).toHaveLength(1);
    expect(health[0]!.store).toBe('postgres');
  });

  it('loses and duplicates no event when a replica is killed in the middle of a run; the other takes the lead and galleries still converge', async () => {
    await enrol(0, 'penny');
    await until(async () => (await synced(1, devices[0]!)) && (await synced(1, devices[1]!)), 20_000, 'penny synced');
    copyFileSync(data('edge_demo', 'group', 'bbt3.jpg'), join(root, 'agent0', 'in', 'bbt3.jpg'));
    copyFileSync(data('edge_demo', 'group', 'bbt5.jpg'), join(root, 'agent1', 'in', 'bbt5.jpg'));
    // Kill a replica while the agents are still detecting and sending.
    await until(async () => (await agentEvents(configs[0]!)).length > 0 || (await agentEvents(configs[1]!)).length > 0, 30_000, 'the first event');
    expect(await replicas[0]!.stop('SIGKILL')).toBeNull();
    for (const i of [0, 1]) await until(async () => { const ev = await agentEvents(configs[i]!); return ev.length >= 2 && ev.every((e) => e.delivered); }, 60_000, `agent ${i}'s events delivered`);
    for (const i of [0, 1]) {
      const stored = (await (await on(1).get(`/api/v1/events?device=${devices[i]!.id}&limit=1000`)).json()) as { items: { id: string; subject: string }[] };
      const local = await agentEvents(configs[i]!);
      expect(stored.items.map((e) => e.id).sort()).toEqual(local.map((e) => e.id).sort());
    }
    await until(async () => ((await (await fetch(`${replicas[1]!.base}/healthz`)).json()) as { leader: boolean }).leader, 30_000, 'the surviving replica to lead');
    // An erasure and an enrolment made on the survivor reach both agents.
    const rajId = ((await (await on(1).get('/api/v1/subjects?search=raj')).json()) as { items: { id: string }[] }).items[0]!.id;
    expect((await on(1).del(`/api/v1/subjects/${rajId}`)).status).toBe(204);
    await enrol(1, 'howard');
    await until(async () => (await agentSubjects(0)).join() === 'howard,penny' && (await agentSubjects(1)).join() === 'howard,penny', 20_000, 'both agents converged');
  });

  it('keeps devices to their own topics on the broker: a device cannot publish as another', async () => {
    const { default: mqtt } = await import('mqtt');
    const [a, b] = devices as [Device, Device];
    await expect(mqtt.connectAsync(mqttUrl, { clientId: 'x', username: a.id, password: 'wrong', reconnectPeriod: 0 })).rejects.toThrow();
    const before = ((await (await on(1).get(`/api/v1/events?device=${b.id}&limit=1000`)).json()) as { items: unknown[] }).items.length;
    const spoof = await mqtt.connectAsync(mqttUrl, { clientId: `spoof-${a.id}`, username: a.id, password: a.secret, reconnectPeriod: 0 });
    spoof.publish(`facefleet/v1/devices/${b.id}/events`, JSON.stringify({ id: 'spoofed-1', deviceId: b.id, type: 'recognition', subjectId: null, subject: 'x', similarity: 0.9, at: new Date().toISOString(), modelId: 'm' }), { qos: 1 });
    await new Promise((r) => setTimeout(r, 1000));
    await spoof.endAsync(true);
    expect(((await (await on(1).get(`/api/v1/events?device=${b.id}&limit=1000`)).json()) as { items: unknown[] }).items).toHaveLength(before);
  });
});

describe.runIf(ready)('facefleet hub migrate: a SQLite hub moved into PostgreSQL, its agent working on without re-enrolment', () => {
  it('copies subjects, templates, devices and events; the agent reconnects to the migrated hub, keeps its gallery and delivers new events', async () => {
    const root = mkdtempSync(join(tmpdir(), 'facefleet-migrate-e2e-'));
    const schema = testSchema();
    const hubDir = join(root, 'hub');
    let hub: HubProcess | undefined;
    let agent: AgentProcess | undefined;
    try {
      const k = await facefleet(['hub', 'create-key', '--data-dir', hubDir, '--role', 'admin']);
      const key = k.stdout.trim();
      hub = await startHub(['--port', '0', '--mqtt-port', '0', '--data-dir', hubDir]);
      const [port, mqttPort] = [new URL(hub.base).port, new URL(hub.mqttUrl).port];
      const admin = api(hub.base, key);
      const d = (await (await admin.post('/api/v1/devices', { name: 'moving-door' })).json()) as Device;
      const s = (await (await admin.post('/api/v1/subjects', { name: 'penny' })).json()) as { id: string };
      await admin.upload(`/api/v1/subjects/${s.id}/faces`, [1, 2, 3].map((n) => data('faceapi_bbt', 'identities', 'penny', `penny${n}.png`)));
      mkdirSync(join(root, 'agent', 'in'), { recursive: true });
      const config = writeYaml(
        join(root, 'agent', 'agent.yaml'),
        `deviceId: ${d.id}\ndataDir: ${root}/agent/data\nsources:\n  - {type: folder, path: ${root}/agent/in}\nmqtt: {url: "${hub.mqttUrl}", username: ${d.id}, password: "${d.secret}"}\noutbox: {retryMs: 1000}\nstatusIntervalMs: 1000\n`,
      );
      agent = await startAgent(config);
      const deviceSynced = async (): Promise<boolean> => ((await (await api(hub!.base, key).get(`/api/v1/devices/${d.id}`)).json()) as { synced: boolean }).synced;
      await until(deviceSynced, 20_000, 'the agent synced on SQLite');
      copyFileSync(data('edge_demo', 'group', 'bbt3.jpg'), join(root, 'agent', 'in', 'bbt3.jpg'));
      await until(async () => { const ev = await agentEvents(config); return ev.length > 0 && ev.every((e) => e.delivered); }, 30_000, 'the first event delivered');
      const before = (await (await admin.get('/api/v1/events?limit=1000')).json()) as { items: { id: string }[] };
      expect(await hub.stop('SIGTERM')).toBe(0);

      const m = await facefleet(['hub', 'migrate', '--data-dir', hubDir, '--database-url', PG_URL, '--database-schema', schema]);
      expect(m.code, m.stderr).toBe(0);
      const counts = JSON.parse(m.stdout) as Record<string, number>;
      expect(counts).toMatchObject({ subjects: 1, templates: 3, devices: 1, events: before.items.length });
      const again = await facefleet(['hub', 'migrate', '--data-dir', hubDir, '--database-url', PG_URL, '--database-schema', schema]);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/already holds/);

      // The same ports and data dir (signing key, crop key), now on PostgreSQL: the agent reconnects by itself.
      hub = await startHub(['--port', port, '--mqtt-port', mqttPort, '--data-dir', hubDir, '--database-url', PG_URL, '--database-schema', schema]);
      const after = (await (await api(hub.base, key).get('/api/v1/events?limit=1000')).json()) as { items: { id: string }[] };
      expect(after.items.map((e) => e.id).sort()).toEqual(before.items.map((e) => e.id).sort());
      await until(async () => ((await (await api(hub!.base, key).get(`/api/v1/devices/${d.id}`)).json()) as { online: boolean }).online, 30_000, 'the agent back online');
      expect(await deviceSynced()).toBe(true);
      copyFileSync(data('edge_demo', 'group', 'bbt5.jpg'), join(root, 'agent', 'in', 'bbt5.jpg'));
      await until(async () => { const ev = await agentEvents(config); return ev.length > before.items.length && ev.every((e) => e.delivered); }, 30_000, 'a new event delivered to the migrated hub');
      const local = await agentEvents(config);
      const stored = (await (await api(hub.base, key).get('/api/v1/events?limit=1000')).json()) as { items: { id: string; subject: string }[] };
      expect(stored.items.map((e) => e.id).sort()).toEqual(local.map((e) => e.id).sort());
      expect(new Set(stored.items.map((e) => e.subject))).toEqual(new Set(['penny']));
    } finally {
      if (agent?.proc.exitCode === null) await agent.stop('SIGKILL');
      if (hub?.proc.exitCode === null) await hub.stop('SIGKILL');
      await dropSchema(schema);
      rmSync(root, { recursive: true, force: true });
    }
  }, 240_000);
});
