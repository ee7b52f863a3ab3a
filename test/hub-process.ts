import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { facefleet } from './cli.js';
import { ROOT } from './helpers.js';

export interface HubProcess {
  proc: ChildProcess;
  base: string;
  mqttUrl: string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
  stderr: () => string;
}

/** `facefleet hub` as a real process; resolves when it prints where it listens. */
export function startHub(args: string[], timeoutMs = 60_000): Promise<HubProcess> {
  const proc = spawn(process.execPath, [join(ROOT, 'packages', 'cli', 'bin', 'facefleet.js'), 'hub', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stdout.resume();
  const exited = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub did not start: ${err.slice(-1500)}`)), timeoutMs);
    proc.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+) .*MQTT (mqtt:\/\/\S+),/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, base: m[1]!, mqttUrl: m[2]!, stderr: () => err, stop: async (signal = 'SIGTERM') => (proc.kill(signal), exited) });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`hub exited with ${code}: ${err.slice(-1500)}`));
    });
  });
}

export async function createKey(dataDir: string, role: string, storeArgs: string[] = []): Promise<string> {
  const r = await facefleet(['hub', 'create-key', '--data-dir', dataDir, '--role', role, ...storeArgs]);
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

export function api(base: string, key: string | undefined) {
  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({ ...(key ? { 'x-api-key': key } : {}), ...extra });
  return {
    headers,
    get: (path: string) => fetch(`${base}${path}`, { headers: headers() }),
    post: (path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(body) }),
    patch: (path: string, body: unknown) => fetch(`${base}${path}`, { method: 'PATCH', headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(body) }),
    raw: (path: string, body: string) => fetch(`${base}${path}`, { method: 'POST', headers: headers({ 'content-type': 'application/json' }), body }),
    del: (path: string) => fetch(`${base}${path}`, { method: 'DELETE', headers: headers() }),
    upload: (path: string, files: string[], field = 'images') => {
      const form = new FormData();
      for (const f of files) form.append(field, new Blob([readFileSync(f)]), basename(f));
      return fetch(`${base}${path}`, { method: 'POST', headers: headers(), body: form });
    },
  };
}
