import { execSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import sharp from 'sharp';

const require = createRequire(import.meta.url);

/** What every figure is measured on: CPU, cores, memory, versions, and the command. */
export function machine(): Record<string, unknown> {
  const version = (pkg: string): string => {
    try {
      return (require(`${pkg}/package.json`) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  };
  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execSync('git status --porcelain --untracked-files=no', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (dirty !== '') commit += '+uncommitted';
  } catch {
    /* not a git checkout */
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntime: version('onnxruntime-node'),
    sharp: `${sharp.versions.sharp ?? 'unknown'} (libvips ${sharp.versions.vips})`,
    commit,
  };
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(values: number[]): Spread {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  const r = (v: number): number => Math.round(v * 100) / 100;
  return { median: r(median), min: r(s[0] ?? 0), max: r(s[s.length - 1] ?? 0) };
}
