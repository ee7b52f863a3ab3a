// node --conditions=source --import tsx bench/peer-run.ts [--quick] [--threads N] [--backend wasm|cpu]
//   [--detector ssdMobilenetv1|tinyFaceDetector] [--lfw-pairs N] [--skip-ours]
// Ours and the peer (@vladmandic/face-api) in one process run (bench/peer-compare.ts); prints
// JSON on stdout, progress on stderr. `pnpm bench --part peer` runs the same into the report.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { machine } from './machine.js';
import { benchPeerCompare } from './peer-compare.js';
import type { PeerBackend, PeerDetector } from './peer.js';

const here = import.meta.dirname;
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    threads: { type: 'string' },
    backend: { type: 'string' },
    detector: { type: 'string' },
    'lfw-pairs': { type: 'string' },
    'skip-ours': { type: 'boolean' },
  },
  strict: true,
});
const dataDir = process.env.FACEFLEET_DATA_DIR ? resolve(process.env.FACEFLEET_DATA_DIR) : resolve(here, '..', '..', 'shared', 'data');
if (!existsSync(join(dataDir, 'lfw3d', 'pairs.txt'))) throw new Error(`peer bench needs the sample data: ${dataDir} has no lfw3d/ (set FACEFLEET_DATA_DIR)`);
const oneOf = <T extends string>(v: string | undefined, allowed: readonly T[], name: string): T | undefined => {
  if (v !== undefined && !allowed.includes(v as T)) throw new Error(`--${name} must be one of ${allowed.join(', ')}`);
  return v as T | undefined;
};
const backend = oneOf<PeerBackend>(values.backend, ['wasm', 'cpu'], 'backend');
const detector = oneOf<PeerDetector>(values.detector, ['ssdMobilenetv1', 'tinyFaceDetector'], 'detector');
const result = await benchPeerCompare(dataDir, {
  threads: Number(values.threads ?? availableParallelism()),
  quick: values.quick === true,
  ...(values['lfw-pairs'] !== undefined ? { lfwPairs: Number(values['lfw-pairs']) } : {}),
  ...(backend ? { backend } : {}),
  ...(detector ? { detector } : {}),
  skipOurs: values['skip-ours'] === true,
  log: (t) => void process.stderr.write(`${t}\n`),
});
const command = `node --conditions=source --import tsx bench/peer-run.ts ${process.argv.slice(2).join(' ')}`.trim();
process.stdout.write(`${JSON.stringify({ machine: machine(), date: new Date().toISOString(), command, ...result }, null, 2)}\n`);
