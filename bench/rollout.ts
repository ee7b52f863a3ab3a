import { spawn } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { Hub, loadHubConfig } from '@facefleet/hub/core';
import { deviceConfigMessage, topics, verifyModelSignature } from '@facefleet/protocol';

export interface RolloutBench {
  agents: number;
  modelId: string;
  modelBytes: number;
  waves: number[];
  ms: number;
  state: string;
}

/**
 * Time to roll a detector out to N simulated agents through the hub as its own process: each
 * agent follows its retained config, downloads the model over HTTP with its own credentials,
 * checks size, sha256 and the hub's signature, and reports each step on MQTT. It does not load
 * the model (that is the agent's own time, measured in the swap benchmark).
 */
export async function benchRollout(cliBin: string, opts: { agents: number; waves: number[]; log: (t: string) => void }): Promise<RolloutBench> {
  const dir = mkdtempSync(join(tmpdir(), 'facefleet-rollout-bench-'));
  const store = await Hub.openStore(loadHubConfig({ dataDir: dir }, undefined, {}));
  const adminKey = (await store.keys.create('admin')).key;
  await store.close();
  const proc = spawn(process.execPath, [cliBin, 'hub', '--port', '0', '--mqtt-port', '0', '--data-dir', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const clients: MqttClient[] = [];
  try {
    const { base, mqttUrl } = await new Promise<{ base: string; mqttUrl: string }>((resolve, reject) => {
      proc.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /listening on (http:\/\/\S+) .*MQTT (mqtt:\/\/\S+),/.exec(err);
        if (m) resolve({ base: m[1]!, mqttUrl: m[2]! });
      });
      proc.on('close', (code) => reject(new Error(`hub exited with ${code}: ${err.slice(-1000)}`)));
    });
    const headers = { 'x-api-key': adminKey, 'content-type': 'application/json' };
    const key = createPublicKey(((await (await fetch(`${base}/api/v1/models/signing-key`, { headers })).json()) as { pem: string }).pem);
    let bytes = 0;
    for (let i = 0; i < opts.agents; i++) {
      const d = (await (await fetch(`${base}/api/v1/devices`, { method: 'POST', headers, body: JSON.stringify({ name: `sim-${i}` }) })).json()) as { id: string; secret: string };
      const client = await mqtt.connectAsync(mqttUrl, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0 });
      clients.push(client);
      const auth = `Basic ${Buffer.from(`${d.id}:${d.secret}`).toString('base64')}`;
      let running = '';
      client.on('message', (_t, payload) => {
        const ref = deviceConfigMessage.parse(JSON.parse(payload.toString())).models?.detector;
        const rolloutId = (JSON.parse(payload.toString()) as { rolloutId?: string | null }).rolloutId ?? null;
        if (!ref || ref.id === running) return;
        const report = (state: string, reason?: string): void =>
          void client.publish(topics.models(d.id), JSON.stringify({ rolloutId, kind: 'detector', modelId: ref.id, state, ...(reason ? { reason } : {}), at: new Date().toISOString() }), { qos: 1 });
        void (async () => {
          report('downloading');
          const body = Buffer.from(await (await fetch(ref.url, { headers: { authorization: auth } })).arrayBuffer());
          bytes = body.length;
          report('verifying');
          const sig = verifyModelSignature(ref, [key]);
          if (body.length !== ref.bytes || createHash('sha256').update(body).digest('hex') !== ref.sha256 || !sig.ok) return report('failed', 'verification failed');
          running = ref.id;
          report('active');
        })();
      });
      await client.subscribeAsync(topics.config(d.id), { qos: 1 });
    }
    // Let every simulated agent's retained config arrive and its status settle before timing.
    await new Promise((r) => setTimeout(r, 500));
    const modelId = 'scrfd-2.5g';
    const t0 = performance.now();
    const created = (await (await fetch(`${base}/api/v1/rollouts`, { method: 'POST', headers, body: JSON.stringify({ modelId, target: 'all', waves: opts.waves }) })).json()) as { id: string; message?: string };
    if (!created.id) throw new Error(`rollout refused: ${created.message ?? ''}`);
    let state = 'running';
    while (state === 'running') {
      await new Promise((r) => setTimeout(r, 50));
      state = ((await (await fetch(`${base}/api/v1/rollouts/${created.id}`, { headers })).json()) as { state: string }).state;
      if (performance.now() - t0 > 600_000) throw new Error('rollout did not finish in 10 minutes');
    }
    const ms = Math.round(performance.now() - t0);
    opts.log(`rollout: ${modelId} (${(bytes / 1e6).toFixed(1)} MB) to ${opts.agents} simulated agents in waves ${opts.waves.join('/')}%: ${state} in ${ms} ms`);
    return { agents: opts.agents, modelId, modelBytes: bytes, waves: opts.waves, ms, state };
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('close', r));
    rmSync(dir, { recursive: true, force: true });
  }
}
