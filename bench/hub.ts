import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { GalleryStore, type SyncChange } from '@facefleet/gallery';
import { Hub, loadHubConfig, type SqliteStore } from '@facefleet/hub/core';
import { decodeVector, syncChangesMessage, topics } from '@facefleet/protocol';

export interface HubBench {
  agents: number;
  eventsPerAgent: number;
  eventsPerSec: number;
  stored: number;
  sync: { templates: number; agents: number; parts: number; ms: number; bytesPerAgent: number; buildMs: number | null }[];
  /** The device side of the largest snapshot: parse, decode and stage every part, then apply (real GalleryStore). */
  agentApply?: { templates: number; parts: number; ms: number };
  /** The hub process's own RSS (it runs alone; the simulated agents are in the benchmark process). */
  rss: { templates: number; startedMb: number; afterSyncMb: number; afterRecognizeMb: number };
}

function rssOf(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return Math.round(kb / 102.4) / 10;
}

interface HubProc {
  proc: ChildProcess;
  base: string;
  mqttUrl: string;
  stderr: () => string;
}

function startHubProcess(cliBin: string, dataDir: string): Promise<HubProc> {
  const proc = spawn(process.execPath, [cliBin, 'hub', '--port', '0', '--mqtt-port', '0', '--data-dir', dataDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  return new Promise((resolve, reject) => {
    proc.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+) .*MQTT (mqtt:\/\/\S+),/.exec(err);
      if (m) resolve({ proc, base: m[1]!, mqttUrl: m[2]!, stderr: () => err });
    });
    proc.on('close', (code) => reject(new Error(`hub exited with ${code}: ${err.slice(-1000)}`)));
  });
}

/** The part header of a snapshot message, read from its ends without parsing the templates. */
export function partOf(payload: Buffer): { toSeq: number; index: number; count: number } {
  const head = payload.subarray(0, 200).toString();
  const tail = payload.subarray(Math.max(0, payload.length - 200)).toString();
  const toSeq = Number(/"toSeq":(\d+)/.exec(head)?.[1] ?? -1);
  const m = /"part":\{"index":(\d+),"count":(\d+)\}\}$/.exec(tail);
  return m ? { toSeq, index: Number(m[1]), count: Number(m[2]) } : { toSeq, index: 0, count: 1 };
}

/**
 * The hub as its own process (`facefleet hub` on the embedded defaults: aedes + SQLite), driven
 * over real MQTT and HTTP by simulated agents in this process, each authenticated as its own
 * device. Ingestion: N agents publish events at QoS 1; the clock stops when every one is stored
 * and acknowledged. Sync: a gallery of K random 512-d templates; N new agents ask for it and
 * follow the snapshot part by part (each asks for the next part when it has the previous one,
 * as the real agent does); the clock stops when every agent has every part. The simulated agents
 * read only the part header; decoding and applying on a device is timed separately, with the
 * real GalleryStore, on the parts of the largest snapshot.
 */
export async function benchHub(
  cliBin: string,
  dataDir: string,
  opts: { agents: number; eventsPerAgent: number; syncTemplates: number[]; syncAgents: number[]; log: (t: string) => void },
): Promise<HubBench> {
  const dir = mkdtempSync(join(tmpdir(), 'facefleet-hub-bench-'));
  const store = await Hub.openStore(loadHubConfig({ dataDir: dir }, undefined, {}));
  const adminKey = (await store.keys.create('admin')).key;
  const hub = await startHubProcess(cliBin, dir);
  const clients = new Set<MqttClient>();
  const headers = { 'x-api-key': adminKey, 'content-type': 'application/json' };
  try {
    const startedMb = rssOf(hub.proc.pid!);
    const devices: { id: string; secret: string }[] = [];
    for (let i = 0; i < Math.max(opts.agents, ...opts.syncAgents); i++) {
      const r = await fetch(`${hub.base}/api/v1/devices`, { method: 'POST', headers, body: JSON.stringify({ name: `bench-${i}` }) });
      devices.push((await r.json()) as { id: string; secret: string });
    }
    const connect = async (d: { id: string; secret: string }): Promise<MqttClient> => {
      const client = await mqtt.connectAsync(hub.mqttUrl, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0 });
      clients.add(client);
      return client;
    };
    const end = async (cs: MqttClient[]): Promise<void> => {
      await Promise.all(cs.map((c) => c.endAsync(true)));
      for (const c of cs) clients.delete(c);
    };

    // Ingestion.
    const ingest = devices.slice(0, opts.agents);
    const ingestClients = await Promise.all(ingest.map(connect));
    let acked = 0;
    const total = opts.agents * opts.eventsPerAgent;
    const done = new Promise<void>((resolve) => {
      for (const c of ingestClients) {
        c.on('message', (_t, p) => {
          acked += (JSON.parse(p.toString()) as { ids: string[] }).ids.length;
          if (acked >= total) resolve();
        });
      }
    });
    await Promise.all(ingest.map((d, i) => ingestClients[i]!.subscribeAsync(topics.acks(d.id), { qos: 1 })));
    const started = performance.now();
    await Promise.all(
      ingest.map(async (d, a) => {
        for (let i = 0; i < opts.eventsPerAgent; i++) {
          const e = { id: `${d.id}-${i}`, deviceId: d.id, type: 'recognition', subjectId: 's', subject: 'bench', similarity: 0.5, at: new Date().toISOString(), modelId: 'm' };
          ingestClients[a]!.publish(topics.events(d.id), JSON.stringify(e), { qos: 1 });
          if (i % 200 === 199) await new Promise((r) => setImmediate(r));
        }
      }),
    );
    await done;
    const seconds = (performance.now() - started) / 1000;
    const eventsPerSec = Math.round(total / seconds);
    opts.log(`hub: ${total} events from ${opts.agents} agents stored and acknowledged in ${seconds.toFixed(2)} s (${eventsPerSec}/s)`);
    await end(ingestClients);
    const stored = await store.events.count();

    // Sync.
    const sync: HubBench['sync'] = [];
    let templates = 0;
    let lastParts: Buffer[] = [];
    for (const k of opts.syncTemplates) {
      const t0 = performance.now();
      // Grow the default gallery to k random unit templates (one per subject), straight into the store.
      fillSqlite(store.store as SqliteStore, templates, k - templates);
      templates = k;
      opts.log(`hub: gallery grown to ${k} templates in ${Math.round(performance.now() - t0)} ms`);
      for (const n of opts.syncAgents) {
        const agents = devices.slice(0, n);
        const cs = await Promise.all(agents.map(connect));
        await Promise.all(agents.map((d, i) => cs[i]!.subscribeAsync(topics.syncChanges(d.id), { qos: 1 })));
        const logBefore = hub.stderr().length;
        let bytes = 0;
        let parts = 0;
        const keep = k === opts.syncTemplates.at(-1) && n === opts.syncAgents[0];
        const kept: Buffer[] = [];
        const t1 = performance.now();
        await Promise.all(
          agents.map(
            (d, i) =>
              new Promise<void>((resolve) => {
                let received = 0;
                cs[i]!.on('message', (_t, p) => {
                  const part = partOf(p);
                  received += p.length;
                  if (i === 0 && keep) kept.push(p);
                  if (part.index + 1 < part.count) {
                    cs[i]!.publish(topics.syncRequest(d.id), JSON.stringify({ galleries: { default: 0 }, resume: { default: { toSeq: part.toSeq, part: part.index + 1 } } }), { qos: 1 });
                    return;
                  }
                  if (i === 0) {
                    bytes = received;
                    parts = part.count;
                  }
                  resolve();
                });
                cs[i]!.publish(topics.syncRequest(d.id), JSON.stringify({ galleries: { default: 0 } }), { qos: 1 });
              }),
          ),
        );
        const ms = Math.round(performance.now() - t1);
        const build = /built in (\d+) ms/.exec(hub.stderr().slice(logBefore));
        sync.push({ templates: k, agents: n, parts, ms, bytesPerAgent: bytes, buildMs: build ? Number(build[1]) : null });
        opts.log(`hub: snapshot of ${k} templates (${parts} parts) to ${n} agents in ${ms} ms (${(bytes / 1e6).toFixed(1)} MB each${build ? `, built in ${build[1]} ms` : ''})`);
        if (keep) lastParts = kept;
        await end(cs);
      }
    }
    const afterSyncMb = rssOf(hub.proc.pid!);

    // The device side of the largest snapshot, with the agent's own code path (parse, decode, stage, apply).
    let agentApply: HubBench['agentApply'];
    if (lastParts.length > 0) {
      const gallery = GalleryStore.open(join(dir, 'agent-gallery.db'));
      const t2 = performance.now();
      for (const p of lastParts) {
        const m = syncChangesMessage.parse(JSON.parse(p.toString()));
        const changes: SyncChange[] = m.changes.map((c) => (c.op === 'delete' ? c : { ...c, templates: c.templates.map((t) => ({ ...t, vector: decodeVector(t.vector) })) }));
        gallery.stageSnapshotPart('default', { toSeq: m.toSeq, index: m.part?.index ?? 0, count: m.part?.count ?? 1, changes }, 'w600k-mbf-fp32');
      }
      const ms = Math.round(performance.now() - t2);
      const count = gallery.listSubjects().length;
      gallery.close();
      agentApply = { templates: count, parts: lastParts.length, ms };
      opts.log(`hub: an agent parses, stages and applies the ${count}-template snapshot (${lastParts.length} parts) in ${ms} ms`);
    }

    // Cloud recognition against the whole gallery loads it into memory once.
    const form = new FormData();
    form.append('image', new Blob([readFileSync(join(dataDir, 'edge_demo', 'group', 'bbt1.jpg'))]), 'bbt1.jpg');
    const rec = await fetch(`${hub.base}/api/v1/recognize`, { method: 'POST', headers: { 'x-api-key': adminKey }, body: form });
    if (rec.status !== 200) throw new Error(`recognize answered ${rec.status}: ${await rec.text()}`);
    const afterRecognizeMb = rssOf(hub.proc.pid!);
    opts.log(`hub: RSS ${startedMb} MB at start, ${afterSyncMb} MB after serving the ${templates}-template snapshots, ${afterRecognizeMb} MB with the gallery loaded for recognition`);
    return { agents: opts.agents, eventsPerAgent: opts.eventsPerAgent, eventsPerSec, stored, sync, ...(agentApply ? { agentApply } : {}), rss: { templates, startedMb, afterSyncMb, afterRecognizeMb } };
  } finally {
    await Promise.all([...clients].map((c) => c.endAsync(true).catch(() => undefined)));
    hub.proc.kill('SIGTERM');
    await new Promise((r) => hub.proc.once('close', r));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `n` subjects with one random unit template each, logged in the default gallery: one SQLite transaction, straight into the hub's file. */
function fillSqlite(store: SqliteStore, from: number, n: number): void {
  const db = store.db;
  const now = new Date().toISOString();
  const subject = db.prepare('INSERT INTO subjects (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)');
  const template = db.prepare('INSERT INTO templates (id, subject_id, model_id, vector, quality, source_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const head = db.prepare("UPDATE galleries SET head_seq = head_seq + 1 WHERE id = 'default' RETURNING head_seq AS h");
  const log = db.prepare("INSERT INTO gallery_log (gallery_id, seq, op, subject_id, at) VALUES ('default', ?, 'upsert', ?, ?)");
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const id = `synthetic-${from + i}`;
      const v = new Float32Array(512).map(() => Math.random() - 0.5);
      const norm = Math.hypot(...v);
      for (let j = 0; j < v.length; j++) v[j]! /= norm;
      subject.run(id, id, now, now);
      template.run(`t-${id}`, id, 'w600k-mbf-fp32', Buffer.from(v.buffer), 0.5, id, now);
      log.run((head.get() as { h: number }).h, id, now);
    }
  })();
}
