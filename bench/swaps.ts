import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hub, loadHubConfig } from '@facefleet/hub/core';

export interface SwapBench {
  swaps: number;
  models: string[];
  rssMb: number[];
  /** Least-squares slope of RSS over swaps after the first five (MB per swap). */
  growthMbPerSwap: number;
  msPerSwap: { median: number; min: number; max: number };
}

function rssOf(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return Math.round(kb / 102.4) / 10;
}

function waitFor(proc: ChildProcess, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  let err = '';
  return new Promise((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = pattern.exec(err);
      if (m) resolve(m);
    });
    proc.on('close', (code) => reject(new Error(`${what} exited with ${code}: ${err.slice(-1500)}`)));
  });
}

/**
 * Agent RSS over N detector swaps: the hub and one agent as processes; the hub rolls scrfd-500m
 * and scrfd-2.5g out to the agent in turn (each a real update: files, sha256, signature, a fresh
 * session, self-test, switch, the old session released), and the agent's RSS is read after each.
 */
export async function benchSwaps(cliBin: string, opts: { swaps: number; log: (t: string) => void }): Promise<SwapBench> {
  const dir = mkdtempSync(join(tmpdir(), 'facefleet-swaps-'));
  const store = await Hub.openStore(loadHubConfig({ dataDir: join(dir, 'hub') }, undefined, {}));
  const adminKey = (await store.keys.create('admin')).key;
  await store.close();
  const hub = spawn(process.execPath, [cliBin, 'hub', '--port', '0', '--mqtt-port', '0', '--data-dir', join(dir, 'hub')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let agent: ChildProcess | undefined;
  try {
    const m = await waitFor(hub, /listening on (http:\/\/\S+) .*MQTT (mqtt:\/\/\S+),/, 'hub');
    const [base, mqttUrl] = [m[1]!, m[2]!];
    const headers = { 'x-api-key': adminKey, 'content-type': 'application/json' };
    const d = (await (await fetch(`${base}/api/v1/devices`, { method: 'POST', headers, body: JSON.stringify({ name: 'swapper' }) })).json()) as { id: string; secret: string };
    mkdirSync(join(dir, 'in'));
    const config = join(dir, 'agent.yaml');
    writeFileSync(config, `deviceId: ${d.id}\ndataDir: ${dir}/agent\nsources:\n  - {type: folder, path: ${dir}/in}\nmqtt: {url: "${mqttUrl}", username: ${d.id}, password: "${d.secret}"}\nstatusIntervalMs: 500\nlogLevel: warn\n`);
    agent = spawn(process.execPath, [cliBin, 'agent', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    agent.stderr!.resume();
    const device = async () => (await (await fetch(`${base}/api/v1/devices/${d.id}`, { headers })).json()) as { online: boolean; models: { detector: string } | null };
    for (let t0 = Date.now(); !((await device()).models !== null && (await device()).online); ) {
      if (Date.now() - t0 > 60_000) throw new Error('the agent did not come online');
      await new Promise((r) => setTimeout(r, 200));
    }
    const models = ['scrfd-2.5g', 'scrfd-500m'];
    const rssMb: number[] = [];
    const times: number[] = [];
    for (let i = 0; i < opts.swaps; i++) {
      const modelId = models[i % 2]!;
      const t1 = performance.now();
      const r = (await (await fetch(`${base}/api/v1/rollouts`, { method: 'POST', headers, body: JSON.stringify({ modelId, target: { devices: [d.id] } }) })).json()) as { id: string; message?: string };
      if (!r.id) throw new Error(`rollout refused: ${r.message ?? ''}`);
      for (;;) {
        const state = ((await (await fetch(`${base}/api/v1/rollouts/${r.id}`, { headers })).json()) as { state: string }).state;
        if (state === 'completed') break;
        if (state !== 'running') throw new Error(`swap ${i + 1} to ${modelId}: rollout ${state}`);
        if (performance.now() - t1 > 120_000) throw new Error(`swap ${i + 1} did not finish in 2 minutes`);
        await new Promise((r2) => setTimeout(r2, 50));
      }
      times.push(performance.now() - t1);
      rssMb.push(rssOf(agent.pid!));
      if ((i + 1) % 10 === 0) opts.log(`swaps: ${i + 1} of ${opts.swaps}, agent RSS ${rssMb.at(-1)} MB`);
    }
    const after = rssMb.map((y, x) => [x + 1, y] as const).filter(([x]) => x > 5);
    const mx = after.reduce((a, [x]) => a + x, 0) / after.length;
    const my = after.reduce((a, [, y]) => a + y, 0) / after.length;
    const slope = after.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / Math.max(1e-9, after.reduce((a, [x]) => a + (x - mx) ** 2, 0));
    const sorted = [...times].sort((a, b) => a - b);
    return {
      swaps: opts.swaps,
      models,
      rssMb,
      growthMbPerSwap: Math.round(slope * 1000) / 1000,
      msPerSwap: { median: Math.round(sorted[Math.floor(sorted.length / 2)]!), min: Math.round(sorted[0]!), max: Math.round(sorted.at(-1)!) },
    };
  } finally {
    agent?.kill('SIGTERM');
    if (agent) await new Promise((r) => agent!.once('close', r));
    hub.kill('SIGTERM');
    await new Promise((r) => hub.once('close', r));
    rmSync(dir, { recursive: true, force: true });
  }
}
