import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { facefleet, json } from './cli.js';
import { ROOT } from './helpers.js';

export interface AgentProcess {
  proc: ChildProcess;
  port: number;
  stderr: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Start `facefleet agent --config <file>` as a real process; resolves once its health port is up. */
export function startAgent(config: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<AgentProcess> {
  const proc = spawn(process.execPath, [join(ROOT, 'packages', 'cli', 'bin', 'facefleet.js'), 'agent', '--config', config], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stdout.resume();
  const exited = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent did not start in ${timeoutMs} ms: ${err.slice(-2000)}`)), timeoutMs);
    proc.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /health on http:\/\/[^:]+:(\d+)\/healthz/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({
          proc,
          port: Number(m[1]),
          stderr: () => err,
          exited,
          stop: async (signal = 'SIGTERM') => {
            proc.kill(signal);
            return exited;
          },
        });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code} before starting: ${err.slice(-2000)}`));
    });
  });
}

export interface AgentEvent {
  id: string;
  type: string;
  subject: string | null;
  subjectId: string | null;
  similarity: number;
  at: string;
  delivered: boolean;
  source?: string;
}

export async function agentEvents(config: string): Promise<AgentEvent[]> {
  return json<{ items: AgentEvent[] }>(await facefleet(['agent', 'events', '--config', config, '--json'])).items;
}

export async function metrics(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

export function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) sum += Number(line.split(' ').pop());
  return sum;
}

export function writeYaml(path: string, yaml: string): string {
  writeFileSync(path, yaml);
  return path;
}
