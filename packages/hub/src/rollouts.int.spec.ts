import { createHash, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceConfigMessage, topics, verifyModelSignature, type ModelReportMessage } from '@facefleet/protocol';
import { findModel, modelFile } from '@facefleet/vision';
import { loadHubConfig } from './config.js';
import { Hub } from './hub.js';

async function until(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A simulated device: follows its retained config and reports an update of the assigned
 * detector as a real agent does (downloading .. active), or `failed` when told to.
 */
class FakeDevice {
  detector = 'scrfd-500m';
  configs = 0;
  constructor(
    readonly id: string,
    readonly client: MqttClient,
    private readonly fail: () => string | undefined,
  ) {
    client.on('message', (topic, payload) => {
      if (topic !== topics.config(id)) return;
      this.configs++;
      const c = deviceConfigMessage.parse(JSON.parse(payload.toString()));
      const ref = c.models?.detector;
      const want = ref?.id ?? 'scrfd-500m';
      if (want === this.detector) return;
      const report = (state: ModelReportMessage['state'], reason?: string): void =>
        void client.publish(topics.models(id), JSON.stringify({ rolloutId: c.rolloutId ?? null, kind: 'detector', modelId: want, state, ...(reason ? { reason } : {}), running: this.detector, at: new Date().toISOString() }), { qos: 1 });
      report('downloading');
      const failure = this.fail();
      if (failure) return report('failed', failure);
      this.detector = want;
      report('active');
    });
  }
}

describe('model registry and rollouts (real hub, embedded broker, real HTTP, simulated devices)', () => {
  let dir: string;
  let hub: Hub;
  let close: () => Promise<void>;
  const devices: FakeDevice[] = [];
  const failing = new Set<string>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hub-rollouts-'));
    hub = await Hub.start(loadHubConfig({ dataDir: dir, port: '0', mqttPort: '0' }, undefined, {}), () => undefined);
    // HTTP (downloads with Range, device auth) is tested against the hub as a process: test/models.e2e.spec.ts.
    close = () => hub.close();
    for (let i = 0; i < 3; i++) {
      const { device, secret } = await hub.devices.create(`fake-${i}`);
      const client = await mqtt.connectAsync(hub.broker.url, { clientId: device.id, username: device.id, password: secret, reconnectPeriod: 0 });
      await client.subscribeAsync(topics.config(device.id), { qos: 1 });
      await hub.devices.setOnline(device.id, true);
      devices.push(new FakeDevice(device.id, client, () => (failing.has(device.id) ? 'self-test output differs' : undefined)));
    }
  }, 60_000);

  afterAll(async () => {
    for (const d of devices) await d.client.endAsync(true);
    await close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the manifest models it has files for, and signs them on first use', async () => {
    const ids = (await hub.registry.list()).map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['scrfd-500m', 'scrfd-2.5g', 'w600k-mbf-fp32']));
    const ref = await hub.registry.ref('scrfd-2.5g');
    expect(verifyModelSignature(ref, [createPublicKey(hub.registry.publicKeyPem)])).toEqual({ ok: true });
    expect(ref.sha256).toBe(createHash('sha256').update(readFileSync(modelFile(findModel('scrfd-2.5g')))).digest('hex'));
    expect(ref.url).toBe(`${hub.publicUrl}/api/v1/models/scrfd-2.5g/file`);
  });

  it('rolls a detector out in two waves to every device, then rolls it back', async () => {
    const r = await hub.rollouts.create({ modelId: 'scrfd-2.5g', target: 'all', waves: [34, 100] });
    const first = await hub.rollouts.view(r.id);
    expect(first.wavesStatus.map((w) => w.devices)).toEqual([1, 2]);
    await until(async () => (await hub.rollouts.view(r.id)).state === 'completed', 10_000, 'the rollout to complete');
    const done = await hub.rollouts.view(r.id);
    expect(done.devices.map((d) => d.state)).toEqual(['active', 'active', 'active']);
    expect(devices.map((d) => d.detector)).toEqual(['scrfd-2.5g', 'scrfd-2.5g', 'scrfd-2.5g']);
    await hub.rollouts.rollback(r.id);
    await until(() => devices.every((d) => d.detector === 'scrfd-500m'), 10_000, 'every device back on its previous detector');
    expect((await hub.rollouts.view(r.id)).state).toBe('rolledBack');
  });

  it('halts when a wave fails over the gate, moves the failed device back, and leaves the next wave untouched', async () => {
    failing.add(devices[1]!.id);
    const r = await hub.rollouts.create({ modelId: 'yunet-s-dynamic', target: 'all', waves: [67, 100], gates: { maxFailureRate: 0 } });
    await until(async () => (await hub.rollouts.view(r.id)).state === 'halted', 10_000, 'the rollout to halt');
    const v = await hub.rollouts.view(r.id);
    expect(v.reason).toMatch(/wave 1: 1 of 2 devices failed .*self-test output differs/);
    expect(v.devices.map((d) => d.state)).toEqual(['active', 'failed', 'pending']);
    expect((await hub.models.assigned(devices[1]!.id)).detector).toBeUndefined(); // back on its previous (its own default)
    expect(devices[2]!.detector).toBe('scrfd-500m');
    await expect(hub.rollouts.create({ modelId: 'scrfd-2.5g', target: 'all' })).rejects.toThrow(/still open/);
    await hub.rollouts.abort(r.id);
    expect((await hub.rollouts.view(r.id)).devices.map((d) => d.state)).toEqual(['active', 'failed', 'cancelled']);
    failing.clear();
  });

  it('refuses an embedder rollout without kept face crops, saying what to do', async () => {
    const s = await hub.subjects.create({ name: 'someone' });
    await hub.subjects.addTemplate({ subjectId: s.id, modelId: 'w600k-mbf-fp32', vector: new Float32Array(512).fill(0.04), quality: 1, sourceSha256: 'abc' });
    await expect(hub.rollouts.create({ modelId: 'mobilefacenet-128d-a', target: 'all' })).rejects.toThrow(/1 of 1 templates have no kept face crop.*keepFaceCrops is off.*re-enrolled/);
  });
});
