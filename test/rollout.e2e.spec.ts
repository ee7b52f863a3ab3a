import { copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentEvents, startAgent, writeYaml, type AgentProcess } from './agent-process.js';
import { data, hasData, ROOT } from './helpers.js';
import { api, createKey, startHub, type HubProcess } from './hub-process.js';

interface Device {
  id: string;
  secret: string;
}
interface Rollout {
  id: string;
  state: string;
  reason: string | null;
  devices: { id: string; state: string; reason?: string }[];
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const manifestModels = (JSON.parse(readFileSync(join(ROOT, 'models', 'manifest.json'), 'utf8')) as { models: { id: string; file: string; input: unknown }[] }).models;

describe.runIf(hasData('faceapi_bbt') && hasData('edge_demo'))('fleet model updates: hub + three agents as processes', () => {
  let root: string;
  let hub: HubProcess;
  let admin: ReturnType<typeof api>;
  const devices: Device[] = [];
  const agents: (AgentProcess | undefined)[] = [];
  const configs: string[] = [];

  const status = async (d: Device) => (await (await admin.get(`/api/v1/devices/${d.id}`)).json()) as { online: boolean; synced: boolean; models: { detector: string; embedder: string } | null };
  const rollout = async (id: string) => (await (await admin.get(`/api/v1/rollouts/${id}`)).json()) as Rollout;
  const create = async (body: unknown): Promise<Rollout> => {
    const r = await admin.post('/api/v1/rollouts', body);
    const json = (await r.json()) as Rollout & { message?: string };
    if (r.status !== 201) throw new Error(`rollout refused (${r.status}): ${json.message ?? ''}`);
    return json;
  };
  const running = async (kind: 'detector' | 'embedder') => Promise.all(devices.map(async (d) => (await status(d)).models?.[kind]));

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'facefleet-rollout-e2e-'));
    const hubDir = join(root, 'hub');
    const adminKey = await createKey(hubDir, 'admin');
    hub = await startHub(['--port', '0', '--mqtt-port', '0', '--data-dir', hubDir, '--config', writeYaml(join(root, 'hub.yaml'), 'keepFaceCrops: true\n')]);
    admin = api(hub.base, adminKey);
    for (const name of ['raj', 'penny', 'howard']) {
      const s = (await (await admin.post('/api/v1/subjects', { name })).json()) as { id: string };
      const r = (await (await admin.upload(`/api/v1/subjects/${s.id}/faces`, [1, 2, 3].map((n) => data('faceapi_bbt', 'identities', name, `${name}${n}.png`)))).json()) as { results: { status: string }[] };
      expect(r.results.map((x) => x.status)).toEqual(['ok', 'ok', 'ok']);
    }
    for (let i = 0; i < 3; i++) {
      const d = (await (await admin.post('/api/v1/devices', { name: `cam-${i}` })).json()) as Device;
      devices.push(d);
      mkdirSync(join(root, `agent${i}`, 'in'), { recursive: true });
      configs.push(
        writeYaml(
          join(root, `agent${i}`, 'agent.yaml'),
          `deviceId: ${d.id}\ndataDir: ${root}/agent${i}/data\nsources:\n  - {type: folder, path: ${root}/agent${i}/in}\nmqtt: {url: "${hub.mqttUrl}", username: ${d.id}, password: "${d.secret}"}\noutbox: {retryMs: 1000}\nstatusIntervalMs: 1000\n`,
        ),
      );
      agents.push(await startAgent(configs[i]!));
    }
    await until(async () => (await Promise.all(devices.map(status))).every((s) => s.online && s.synced && s.models !== null), 30_000, 'three agents online and synced');
  }, 240_000);

  afterAll(async () => {
    for (const a of agents) if (a && a.proc.exitCode === null) await a.stop('SIGKILL');
    if (hub?.proc.exitCode === null) await hub.stop('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  it('rolls a detector out to three agents in two waves', async () => {
    expect(await running('detector')).toEqual(['scrfd-500m', 'scrfd-500m', 'scrfd-500m']);
    const r = await create({ modelId: 'scrfd-2.5g', target: 'all', waves: [34, 100] });
    expect(r.devices.map((d) => d.state)).toEqual(['assigned', 'pending', 'pending']);
    await until(async () => (await rollout(r.id)).state === 'completed', 90_000, 'the detector rollout to complete');
    expect((await rollout(r.id)).devices.map((d) => d.state)).toEqual(['active', 'active', 'active']);
    await until(async () => (await running('detector')).every((m) => m === 'scrfd-2.5g'), 10_000, 'every agent reporting scrfd-2.5g');
  }, 120_000);

  it('refuses a model whose bytes do not match its sha256: the agents keep their detector, the rollout halts', async () => {
    const base = manifestModels.find((m) => m.id === 'yunet-s-dynamic')!;
    // A copy with a doc_string appended (ModelProto field 6; a later singular field wins): still a
    // valid model, but with bytes no agent has locally (agents reuse a project file of the same sha256).
    const note = Buffer.from('facefleet rollout e2e: tampered copy');
    const bytes = Buffer.concat([readFileSync(join(ROOT, 'models', 'files', base.file)), Buffer.from([0x32, note.length]), note]);
    const form = new FormData();
    form.append('file', new Blob([bytes]), base.file);
    form.append('manifest', JSON.stringify({ id: 'yunet-tampered', kind: 'detector', family: 'yunet', input: base.input, scoreThreshold: 0.6 }));
    const up = (await (await fetch(`${hub.base}/api/v1/models`, { method: 'POST', headers: admin.headers(), body: form })).json()) as { sha256: string };
    // Someone alters the file on the hub's disk after it was registered and signed (same size).
    const fd = openSync(join(root, 'hub', 'models', `${up.sha256}.onnx`), 'r+');
    writeSync(fd, Buffer.from('tampered'), 0, 8, 4096);
    closeSync(fd);
    const r = await create({ modelId: 'yunet-tampered', target: 'all', waves: [100] });
    await until(async () => (await rollout(r.id)).state === 'halted', 30_000, 'the rollout to halt')
    const halted = await rollout(r.id);
    expect(halted.devices.filter((d) => d.state === 'failed').length).toBeGreaterThanOrEqual(1);
    expect(halted.devices.find((d) => d.state === 'failed')!.reason).toMatch(/sha256/);
    expect(halted.devices.some((d) => d.state === 'active')).toBe(false);
    await until(async () => (await running('detector')).every((m) => m === 'scrfd-2.5g'), 10_000, 'every agent still on scrfd-2.5g');
    await admin.post(`/api/v1/rollouts/${r.id}/abort`, {});
    // Recognition went on: a photo dropped now still produces events.
    copyFileSync(data('edge_demo', 'group', 'bbt3.jpg'), join(root, 'agent1', 'in', 'bbt3.jpg'));
    await until(async () => (await agentEvents(configs[1]!)).length >= 3, 30_000, 'agent 1 recognising after the refused update');
  }, 150_000);

  it('switches embedder fleet-wide after re-embedding the gallery, and still names the sample people', async () => {
    const r = await create({ modelId: 'mobilefacenet-128d-a', target: 'all', waves: [100] });
    await until(async () => (await rollout(r.id)).state === 'completed', 120_000, 'the embedder rollout to complete');
    await until(async () => (await running('embedder')).every((m) => m === 'mobilefacenet-128d-a'), 10_000, 'every agent reporting the new embedder');
    copyFileSync(data('edge_demo', 'group', 'bbt5.jpg'), join(root, 'agent0', 'in', 'bbt5.jpg'));
    await until(async () => (await agentEvents(configs[0]!)).filter((e) => e.subject !== null).length >= 3, 30_000, 'agent 0 naming people with the new embedder');
    const events = await agentEvents(configs[0]!);
    const named = events.filter((e) => e.subject !== null);
    expect(named.map((e) => e.subject).sort()).toEqual(['howard', 'penny', 'raj']);
  }, 180_000);

  it('gives a device that was offline during a rollout the model when it returns', async () => {
    expect(await agents[2]!.stop('SIGTERM')).toBe(0);
    await until(async () => !(await status(devices[2]!)).online, 10_000, 'agent 2 offline');
    const r = await create({ modelId: 'scrfd-500m', target: 'all', waves: [100] });
    await until(async () => (await rollout(r.id)).devices.filter((d) => d.state === 'active').length === 2, 90_000, 'the two online agents')
    expect((await rollout(r.id)).state).toBe('running');
    agents[2] = await startAgent(configs[2]!);
    await until(async () => (await rollout(r.id)).state === 'completed', 90_000, 'the returning agent to apply it');
    expect(await running('detector')).toEqual(['scrfd-500m', 'scrfd-500m', 'scrfd-500m']);
  }, 180_000);
});
