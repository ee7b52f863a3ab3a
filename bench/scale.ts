// Scale-out (issue 7): the same ingestion and sync measurements as the hub part, with two hub
// replicas as processes on one PostgreSQL and one Mosquitto (its own, on a free port, with the
// password and ACL files `facefleet hub broker-config` writes), simulated agents spread over the
// replicas' shared subscriptions.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { cropKey, DEFAULT_GALLERY, openStore, type HubStore } from '@facefleet/hub/core';
import { topics } from '@facefleet/protocol';
import { partOf } from './hub.js';

export interface ScaleBench {
  replicas: number;
  store: string;
  broker: string;
  agents: number;
  eventsPerAgent: number;
  eventsPerSec: number;
  stored: number;
  /** Events each replica stored (the shared subscription spreads them). */
  perReplica: number[];
  /** Events the simulated agents sent again once no acknowledgement had come for 5 s (as the agent's outbox resends). */
  resent: number;
  sync: { templates: number; agents: number; ms: number; parts: number }[];
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

function waitFor(proc: ChildProcess, pattern: RegExp, what: string, timeoutMs = 60_000): Promise<{ match: RegExpExecArray; log: () => string }> {
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${log.slice(-1000)}`)), timeoutMs);
    proc.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      const m = pattern.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve({ match: m, log: () => log });
      }
    });
    proc.on('close', (code) => reject(new Error(`${what} exited with ${code}: ${log.slice(-1000)}`)));
  });
}

/** `n` subjects with one random unit template each, in the default gallery, through the store interface (8 at a time). */
async function fill(store: HubStore, from: number, n: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = from + next++;
      const s = await store.subjects.create({ name: `synthetic-${i}` });
      const v = new Float32Array(512).map(() => Math.random() - 0.5);
      const norm = Math.hypot(...v);
      for (let j = 0; j < v.length; j++) v[j]! /= norm;
      await store.subjects.addTemplate({ subjectId: s.id, modelId: 'w600k-mbf-fp32', vector: v, quality: 0.5, sourceSha256: s.id });
      await store.galleries.append([DEFAULT_GALLERY], 'upsert', s.id);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

export async function benchScale(cliBin: string, opts: { databaseUrl: string; agents: number; eventsPerAgent: number; syncTemplates: number[]; syncAgents: number; log: (t: string) => void }): Promise<ScaleBench> {
  const dir = mkdtempSync(join(tmpdir(), 'facefleet-scale-bench-'));
  const schema = `ff_bench_${randomBytes(4).toString('hex')}`;
  const db = ['--database-url', opts.databaseUrl, '--database-schema', schema];
  const hubUser = ['--hub-username', 'facefleet-hub', '--hub-password', randomBytes(12).toString('hex')];
  const port = await freePort();
  const brokerArgs = ['--out', join(dir, 'broker'), '--broker-port', String(port), ...hubUser];
  const cli = (args: string[]): string => {
    const r = spawnSync(process.execPath, [cliBin, 'hub', ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`facefleet hub ${args[0]} failed: ${r.stderr}`);
    return r.stdout.trim();
  };
  const key = cli(['create-key', ...db, '--role', 'admin']);
  cli(['broker-config', ...db, ...brokerArgs]);
  // As this user: as root, Mosquitto would switch to its own user, who cannot read the 0600 passwd written here.
  writeFileSync(join(dir, 'mosquitto-bench.conf'), `${readFileSync(join(dir, 'broker', 'mosquitto.conf'), 'utf8')}user ${userInfo().username}\n`);
  const broker = spawn('mosquitto', ['-c', join(dir, 'mosquitto-bench.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  const procs: ChildProcess[] = [broker];
  const clients = new Set<MqttClient>();
  const store = await openStore({ dataDir: dir, databaseUrl: opts.databaseUrl, databaseSchema: schema }, cropKey(dir), () => undefined);
  try {
    await waitFor(broker, /running/, 'mosquitto');
    const mqttUrl = `mqtt://127.0.0.1:${port}`;
    const hubYaml = join(dir, 'hub.yaml');
    writeFileSync(hubYaml, `mqttUsername: ${hubUser[1]}\nmqttPassword: "${hubUser[3]}"\n`);
    const replicas: { base: string; log: () => string }[] = [];
    for (let i = 0; i < 2; i++) {
      const proc = spawn(process.execPath, [cliBin, 'hub', '--port', '0', '--data-dir', join(dir, 'hub'), '--mqtt-url', mqttUrl, '--config', hubYaml, ...db], { stdio: ['ignore', 'ignore', 'pipe'] });
      procs.push(proc);
      const { match, log } = await waitFor(proc, /listening on (http:\/\/\S+) /, `hub replica ${i}`);
      replicas.push({ base: match[1]!, log });
    }
    const headers = { 'x-api-key': key, 'content-type': 'application/json' };
    const devices: { id: string; secret: string }[] = [];
    for (let i = 0; i < Math.max(opts.agents, opts.syncAgents); i++) {
      const r = await fetch(`${replicas[i % 2]!.base}/api/v1/devices`, { method: 'POST', headers, body: JSON.stringify({ name: `bench-${i}` }) });
      devices.push((await r.json()) as { id: string; secret: string });
    }
    cli(['broker-config', ...db, ...brokerArgs]);
    broker.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 500));
    const connect = async (d: { id: string; secret: string }): Promise<MqttClient> => {
      const c = await mqtt.connectAsync(mqttUrl, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0 });
      clients.add(c);
      return c;
    };

    // Ingestion through the shared subscription, stored once in PostgreSQL, acknowledged by whichever replica stored it.
    const ingest = devices.slice(0, opts.agents);
    const cs = await Promise.all(ingest.map(connect));
    const total = opts.agents * opts.eventsPerAgent;
    const acked = new Set<string>();
    let resent = 0;
    let lastAck = Date.now();
    const done = new Promise<void>((resolve) => {
      for (const c of cs)
        c.on('message', (_t, p) => {
          lastAck = Date.now();
          for (const id of (JSON.parse(p.toString()) as { ids: string[] }).ids) acked.add(id);
          if (acked.size >= total) resolve();
        });
    });
    await Promise.all(ingest.map((d, i) => cs[i]!.subscribeAsync(topics.acks(d.id), { qos: 1 })));
    const started = performance.now();
    await Promise.all(
      ingest.map(async (d, a) => {
        for (let i = 0; i < opts.eventsPerAgent; i++) {
          const e = { id: `${d.id}-${i}`, deviceId: d.id, type: 'recognition', subjectId: 's', subject: 'bench', similarity: 0.5, at: new Date().toISOString(), modelId: 'm' };
          cs[a]!.publish(topics.events(d.id), JSON.stringify(e), { qos: 1 });
          if (i % 200 === 199) await new Promise((r) => setImmediate(r));
        }
      }),
    );
    // As a real agent's outbox does: resend what is not acknowledged after a while (at QoS 1 a
    // broker may still drop messages under load, e.g. past its per-client queue).
    const resend = setInterval(() => {
      if (Date.now() - lastAck < 5000) return; // still flowing
      lastAck = Date.now();
      ingest.forEach((d, a) => {
        for (let i = 0; i < opts.eventsPerAgent; i++) {
          const id = `${d.id}-${i}`;
          if (acked.has(id)) continue;
          resent++;
          cs[a]!.publish(topics.events(d.id), JSON.stringify({ id, deviceId: d.id, type: 'recognition', subjectId: 's', subject: 'bench', similarity: 0.5, at: new Date().toISOString(), modelId: 'm' }), { qos: 1 });
        }
      });
    }, 1000);
    await done.finally(() => clearInterval(resend));
    const seconds = (performance.now() - started) / 1000;
    const eventsPerSec = Math.round(total / seconds);
    const stored = await store.events.count();
    const perReplica = await Promise.all(replicas.map(async (r) => ((await (await fetch(`${r.base}/healthz`)).json()) as { ingest: { ingested: number } }).ingest.ingested));
    opts.log(`scale: ${total} events from ${opts.agents} agents through 2 replicas (${perReplica.join(' + ')}) stored and acknowledged in ${seconds.toFixed(2)} s (${eventsPerSec}/s); ${stored} rows; ${resent} resent after 5 s without any acknowledgement`);
    await Promise.all(cs.map((c) => c.endAsync(true)));
    for (const c of cs) clients.delete(c);

    // Sync: new agents follow the snapshot part by part; requests are spread over the replicas.
    const sync: ScaleBench['sync'] = [];
    let templates = 0;
    for (const k of opts.syncTemplates) {
      const t0 = performance.now();
      await fill(store, templates, k - templates);
      templates = k;
      opts.log(`scale: gallery grown to ${k} templates in PostgreSQL in ${Math.round(performance.now() - t0)} ms`);
      const agents = devices.slice(0, opts.syncAgents);
      const sc = await Promise.all(agents.map(connect));
      await Promise.all(agents.map((d, i) => sc[i]!.subscribeAsync(topics.syncChanges(d.id), { qos: 1 })));
      let parts = 0;
      const t1 = performance.now();
      await Promise.all(
        agents.map(
          (d, i) =>
            new Promise<void>((resolve) => {
              sc[i]!.on('message', (_t, p) => {
                const part = partOf(p);
                if (part.index + 1 < part.count) {
                  sc[i]!.publish(topics.syncRequest(d.id), JSON.stringify({ galleries: { default: 0 }, resume: { default: { toSeq: part.toSeq, part: part.index + 1 } } }), { qos: 1 });
                  return;
                }
                parts = part.count;
                resolve();
              });
              sc[i]!.publish(topics.syncRequest(d.id), JSON.stringify({ galleries: { default: 0 } }), { qos: 1 });
            }),
        ),
      );
      const ms = Math.round(performance.now() - t1);
      sync.push({ templates: k, agents: opts.syncAgents, ms, parts });
      opts.log(`scale: snapshot of ${k} templates (${parts} parts) to ${opts.syncAgents} agents through 2 replicas in ${ms} ms`);
      await Promise.all(sc.map((c) => c.endAsync(true)));
      for (const c of sc) clients.delete(c);
    }
    return { replicas: 2, store: 'postgres', broker: 'mosquitto 2 (shared subscriptions)', agents: opts.agents, eventsPerAgent: opts.eventsPerAgent, eventsPerSec, stored, perReplica, resent, sync };
  } finally {
    await Promise.all([...clients].map((c) => c.endAsync(true).catch(() => undefined)));
    for (const p of procs.reverse()) {
      p.kill('SIGTERM');
      if (p.exitCode === null) await new Promise((r) => p.once('close', r));
    }
    await store.close();
    const { default: pg } = await import('pg');
    const { pgPoolConfig } = await import('@facefleet/hub/postgres');
    const client = new pg.Client(pgPoolConfig(opts.databaseUrl));
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
    rmSync(dir, { recursive: true, force: true });
  }
}
