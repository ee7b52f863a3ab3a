// Agent RSS with a large gallery (issue 6, item 6): the daemon as a process, once with an empty
// gallery and once with N random 512-d templates of the default embedder, each after it has
// searched a real photo (the index is built on the first search).
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GalleryStore, type SyncChange } from '@facefleet/gallery';
import { loadManifest } from '@facefleet/vision';

export interface AgentGalleryBench {
  templates: number;
  embedder: string;
  /** RSS after the first photo was searched, with an empty gallery and with `templates`. */
  emptyMb: number;
  fullMb: number;
  /** (full - empty) / templates. */
  bytesPerTemplate: number;
  /** Time for the daemon to open the gallery file and answer the first photo. */
  firstPhotoMs: { empty: number; full: number };
}

const rssMb = (pid: number): number => Math.round((Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024) * 10) / 10;

export async function benchAgentGallery(dataDir: string, cliBin: string, opts: { templates: number; log: (t: string) => void }): Promise<AgentGalleryBench> {
  const embedder = loadManifest().defaults.embedder;
  const empty = await run(0);
  const full = await run(opts.templates);
  return {
    templates: opts.templates,
    embedder,
    emptyMb: empty.mb,
    fullMb: full.mb,
    bytesPerTemplate: Math.round(((full.mb - empty.mb) * 1024 * 1024) / Math.max(1, opts.templates)),
    firstPhotoMs: { empty: empty.ms, full: full.ms },
  };

  async function run(templates: number): Promise<{ mb: number; ms: number }> {
    const dir = mkdtempSync(join(tmpdir(), 'facefleet-agent-gallery-'));
    try {
      mkdirSync(join(dir, 'data'), { recursive: true });
      mkdirSync(join(dir, 'in'));
      if (templates > 0) fill(join(dir, 'data', 'gallery.db'), templates, embedder);
      const config = join(dir, 'agent.yaml');
      writeFileSync(config, `deviceId: gallery-bench\ndataDir: ${dir}/data\nsources:\n  - {type: folder, path: ${dir}/in}\nrecognition: {unknownEvents: true}\nlogLevel: warn\n`);
      const proc = spawn(process.execPath, [cliBin, 'agent', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      try {
        await new Promise<void>((ok, fail) => {
          let err = '';
          proc.stderr.on('data', (b: Buffer) => {
            err += b.toString();
            if (err.includes('health on')) ok();
          });
          proc.on('close', (code) => fail(new Error(`agent exited ${code}: ${err.slice(-500)}`)));
        });
        const t0 = Date.now();
        copyFileSync(join(dataDir, 'edge_demo', 'group', 'bbt3.jpg'), join(dir, 'in', 'bbt3.jpg'));
        for (;;) {
          const r = spawnSync(process.execPath, [cliBin, 'agent', 'events', '--config', config, '--json'], { encoding: 'utf8' });
          if (r.status === 0 && (JSON.parse(r.stdout) as { items: unknown[] }).items.length > 0) break;
          if (Date.now() - t0 > 120_000) throw new Error('the agent produced no event for bbt3.jpg in 120 s');
          await new Promise((r) => setTimeout(r, 250));
        }
        const ms = Date.now() - t0;
        await new Promise((r) => setTimeout(r, 2000));
        const mb = rssMb(proc.pid!);
        opts.log(`agent gallery: ${templates} templates: RSS ${mb} MB, first photo ${ms} ms`);
        return { mb, ms };
      } finally {
        proc.kill('SIGTERM');
        await new Promise((r) => (proc.exitCode !== null ? r(undefined) : proc.on('close', r)));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** N subjects with one random unit template each, written as one snapshot (one transaction). */
function fill(path: string, n: number, modelId: string): void {
  let state = 12345;
  const rand = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
  const changes: SyncChange[] = [];
  for (let i = 0; i < n; i++) {
    const v = new Float32Array(512);
    let norm = 0;
    for (let j = 0; j < 512; j++) norm += (v[j] = rand()) ** 2;
    norm = Math.sqrt(norm);
    for (let j = 0; j < 512; j++) v[j]! /= norm;
    changes.push({ op: 'upsert', subjectId: `s${i}`, name: `person ${i}`, templates: [{ id: `t${i}`, modelId, vector: v }] });
  }
  const g = GalleryStore.open(path);
  try {
    g.applySync('default', { snapshot: true, toSeq: 1, changes });
  } finally {
    g.close();
  }
}
