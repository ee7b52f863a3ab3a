import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pino } from 'pino';
import { Controller, loadConfig } from '@facefleet/agent';
import { loadHubConfig, startHubServer } from '@facefleet/hub';
import { table, type Io } from '../output.js';

/**
 * The fleet half of the demo: the hub on the embedded defaults (aedes + SQLite), one agent with
 * a folder source, the sample people enrolled over the REST API, the bbt photos dropped into the
 * agent's folder, and the events read back from the hub. Keeps running for a person at a terminal.
 */
export async function fleetDemo(data: string, out: string, io: Io, keepRunning: boolean): Promise<void> {
  const hubDir = join(out, 'hub');
  const agentDir = join(out, 'agent');
  rmSync(hubDir, { recursive: true, force: true });
  rmSync(agentDir, { recursive: true, force: true });
  const quiet = (m: string): void => {
    if (/taken/.test(m)) io.err(`hub: ${m}`);
  };
  const { hub, app, port } = await startHubServer(loadHubConfig({ dataDir: hubDir }, undefined, {}), { portGiven: false, mqttPortGiven: false }, quiet);
  let agent: Controller | undefined;
  try {
    const base = `http://${hub.config.host}:${port}`;
    const key = (await hub.keys.create('admin')).key;
    const call = async (method: string, path: string, body?: unknown, form?: FormData): Promise<unknown> => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { 'x-api-key': key, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : form ? { body: form } : {}),
      });
      if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
      return res.json();
    };
    const device = (await call('POST', '/api/v1/devices', { name: 'demo-camera' })) as { id: string; secret: string };
    const people = join(data, 'faceapi_bbt', 'identities');
    let templates = 0;
    for (const name of readdirSync(people).sort()) {
      const s = (await call('POST', '/api/v1/subjects', { name })) as { id: string };
      const form = new FormData();
      for (const f of readdirSync(join(people, name)).sort()) form.append('images', new Blob([new Uint8Array(readFileSync(join(people, name, f)))]), f);
      const r = (await call('POST', `/api/v1/subjects/${s.id}/faces`, undefined, form)) as { results: { status: string }[] };
      templates += r.results.filter((x) => x.status === 'ok').length;
    }
    io.out(`\nHub: ${readdirSync(people).length} people enrolled over REST (${templates} templates) on ${base}`);

    mkdirSync(join(agentDir, 'inbox'), { recursive: true });
    const configPath = join(agentDir, 'agent.yaml');
    writeFileSync(configPath, `deviceId: ${device.id}\ndataDir: ${join(agentDir, 'data')}\nsources:\n  - {type: folder, path: ${join(agentDir, 'inbox')}, name: inbox}\nmqtt: {url: "${hub.broker.url}", username: ${device.id}, password: "${device.secret}"}\nstatusIntervalMs: 1000\noutbox: {retryMs: 1000}\n`);
    agent = new Controller(loadConfig(configPath, {}, {}), pino({ level: 'warn' }, pino.destination(2)));
    await agent.start();
    const synced = await waitFor(async () => ((await call('GET', `/api/v1/devices/${device.id}`)) as { synced: boolean }).synced, 30_000);
    io.out(`Agent ${device.id}: ${synced ? 'gallery synced from the hub' : 'gallery not synced yet (continuing)'}; dropping the bbt photos into its folder source`);
    const photos = readdirSync(join(data, 'edge_demo', 'group')).filter((f) => /^bbt\d+\.jpg$/.test(f)).sort();
    for (const p of photos) copyFileSync(join(data, 'edge_demo', 'group', p), join(agentDir, 'inbox', p));
    let events: { items: { subject: string | null; similarity: number; at: string; deviceId: string }[] } = { items: [] };
    let last = -1;
    await waitFor(async () => {
      events = (await call('GET', '/api/v1/events?limit=100')) as typeof events;
      const stable = events.items.length > 0 && events.items.length === last;
      last = events.items.length;
      return stable;
    }, 60_000, 1500);
    io.out(`\nEvents the hub received (${events.items.length}):`);
    io.out(table([['at', 'subject', 'similarity'], ...events.items.slice().reverse().map((e) => [e.at, e.subject ?? '(unknown)', e.similarity.toFixed(3)])]));
    io.out(`\nWhere to look:\n  API docs  ${base}/api/docs   (OpenAPI JSON: ${base}/api/openapi.json)\n  events    curl -H 'x-api-key: ${key}' ${base}/api/v1/events\n  MQTT      ${hub.broker.url}\n  agent     ${agentDir} (pnpm exec facefleet agent events --config ${basename(agentDir)}/agent.yaml --json, from ${out})`);
    if (keepRunning) {
      io.out('\nHub and agent keep running; Ctrl-C stops them.');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
    }
  } finally {
    const debug = process.env.FACEFLEET_DEBUG === '1' ? (m: string) => io.err(`demo: ${m}`) : () => undefined;
    debug('stopping agent');
    await agent?.stop();
    debug('closing http');
    await app.close();
    debug('closing hub');
    await hub.close();
    debug('closed');
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<boolean> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return false;
}
