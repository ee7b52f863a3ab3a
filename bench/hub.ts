import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { Hub, loadHubConfig } from '@facefleet/hub/core';
import { topics } from '@facefleet/protocol';

export interface HubBench {
  agents: number;
  eventsPerAgent: number;
  eventsPerSec: number;
  stored: number;
  sync: { templates: number; agents: number; ms: number; bytesPerAgent: number }[];
  rssMbWithTemplates: { templates: number; rssMb: number };
}

function rssMb(): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
  return Math.round(kb / 102.4) / 10;
}

/**
 * Ingestion: N simulated agents (real mqtt.js clients, each authenticated as its own device)
 * publish events at QoS 1 to the embedded broker; the clock stops when the hub has stored and
 * acknowledged every one. Sync: time for N agents to receive a snapshot of a gallery of K
 * random 512-d templates after asking for it.
 */
export async function benchHub(opts: { agents: number; eventsPerAgent: number; syncTemplates: number[]; syncAgents: number[]; log: (t: string) => void }): Promise<HubBench> {
  const dir = mkdtempSync(join(tmpdir(), 'facefleet-hub-bench-'));
  const hub = await Hub.start(loadHubConfig({ dataDir: dir, port: '0', mqttPort: '0' }, undefined, {}), () => undefined);
  const clients: MqttClient[] = [];
  try {
    const connect = async (name: string): Promise<{ id: string; client: MqttClient }> => {
      const { device, secret } = hub.devices.create(name);
      const client = await mqtt.connectAsync(hub.broker.url, { clientId: device.id, username: device.id, password: secret, reconnectPeriod: 0 });
      clients.push(client);
      return { id: device.id, client };
    };
    const devs = await Promise.all(Array.from({ length: opts.agents }, (_, i) => connect(`bench-${i}`)));
    let acked = 0;
    const total = opts.agents * opts.eventsPerAgent;
    const done = new Promise<void>((resolve) => {
      for (const d of devs) {
        d.client.on('message', (_t, p) => {
          acked += (JSON.parse(p.toString()) as { ids: string[] }).ids.length;
          if (acked >= total) resolve();
        });
      }
    });
    await Promise.all(devs.map((d) => d.client.subscribeAsync(topics.acks(d.id), { qos: 1 })));
    const started = performance.now();
    await Promise.all(
      devs.map(async (d, a) => {
        for (let i = 0; i < opts.eventsPerAgent; i++) {
          const e = { id: `${d.id}-${i}`, deviceId: d.id, type: 'recognition', subjectId: 's', subject: 'bench', similarity: 0.5, at: new Date().toISOString(), modelId: 'm' };
          d.client.publish(topics.events(d.id), JSON.stringify(e), { qos: 1 });
          if (i % 200 === 199) await new Promise((r) => setImmediate(r));
        }
        void a;
      }),
    );
    await done;
    const seconds = (performance.now() - started) / 1000;
    const eventsPerSec = Math.round(total / seconds);
    opts.log(`hub: ${total} events from ${opts.agents} agents stored and acknowledged in ${seconds.toFixed(2)} s (${eventsPerSec}/s)`);

    const sync: HubBench['sync'] = [];
    let templates = 0;
    for (const k of opts.syncTemplates) {
      // Grow the default gallery to k random templates (one per subject), straight into the store.
      const insert = hub.db.transaction((n: number) => {
        for (let i = 0; i < n; i++) {
          const s = hub.subjects.create({ name: `synthetic-${templates + i}` });
          const v = new Float32Array(512).map(() => Math.random() - 0.5);
          hub.subjects.addTemplate({ subjectId: s.id, modelId: 'w600k-mbf-fp32', vector: v, quality: 0.5, sourceSha256: `${s.id}` });
          hub.galleries.append('default', 'upsert', s.id);
        }
      });
      insert(k - templates);
      templates = k;
      for (const n of opts.syncAgents) {
        const agents = await Promise.all(Array.from({ length: n }, (_, i) => connect(`sync-${k}-${n}-${i}`)));
        let bytes = 0;
        const t0 = performance.now();
        await Promise.all(
          agents.map(async (d) => {
            const got = new Promise<void>((resolve) => d.client.on('message', (_t, p) => ((bytes = p.length), resolve())));
            await d.client.subscribeAsync(topics.syncChanges(d.id), { qos: 1 });
            d.client.publish(topics.syncRequest(d.id), JSON.stringify({ galleries: { default: 0 } }), { qos: 1 });
            await got;
          }),
        );
        const ms = Math.round(performance.now() - t0);
        sync.push({ templates: k, agents: n, ms, bytesPerAgent: bytes });
        opts.log(`hub: snapshot of ${k} templates to ${n} agents in ${ms} ms (${(bytes / 1e6).toFixed(1)} MB each)`);
        await Promise.all(agents.map((d) => d.client.endAsync(true)));
      }
    }
    return { agents: opts.agents, eventsPerAgent: opts.eventsPerAgent, eventsPerSec, stored: hub.events.count(), sync, rssMbWithTemplates: { templates, rssMb: rssMb() } };
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
