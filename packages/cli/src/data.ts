import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UnavailableError } from '@facefleet/protocol';
import { projectRoot } from '@facefleet/vision';

/**
 * Where the sample data lives: FACEFLEET_DATA_DIR, else ../shared/data beside the repo (this
 * workplace), else the ignored .data/ folder that `fetchDemoData` fills from upstream.
 */
export function dataDir(): string {
  const env = process.env.FACEFLEET_DATA_DIR;
  if (env !== undefined && env !== '') return resolve(env);
  const shared = join(projectRoot(), '..', 'shared', 'data');
  return existsSync(shared) ? shared : join(projectRoot(), '.data');
}

/** The sets and files the demo needs (each set's files.tsv pins their upstream source and sha256). */
export const DEMO_FILES: Record<string, (dest: string) => boolean> = {
  faceapi_bbt: () => true,
  edge_demo: (dest) => /^group\/bbt\d\.jpg$/.test(dest) || dest === 'video/faceapi_test_video.mp4',
};

/**
 * Download the demo files from their upstream repositories (files.tsv columns: dest, repo,
 * commit, path, bytes, sha256), verifying each sha256. Used only where ../shared/data is absent.
 */
export async function fetchDemoData(target = join(projectRoot(), '.data'), log: (t: string) => void = () => {}): Promise<void> {
  const listDir = join(projectRoot(), 'test', 'data-manifests');
  for (const [set, want] of Object.entries(DEMO_FILES)) {
    const tsv = readFileSync(join(listDir, `${set}.tsv`), 'utf8');
    for (const line of tsv.split('\n')) {
      const [dest, repo, commit, path, , sha256] = line.split('\t');
      if (!dest || !repo || !commit || !path || !sha256 || !want(dest)) continue;
      const file = join(target, set, dest);
      if (existsSync(file) && createHash('sha256').update(readFileSync(file)).digest('hex') === sha256) continue;
      const url = `https://raw.githubusercontent.com/${repo}/${commit}/${path}`;
      let bytes: Uint8Array;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        bytes = new Uint8Array(await res.arrayBuffer());
      } catch (err) {
        throw new UnavailableError(`demo data ${set}/${dest}: cannot download ${url} (${(err as Error).message})`);
      }
      const got = createHash('sha256').update(bytes).digest('hex');
      if (got !== sha256) throw new UnavailableError(`demo data ${set}/${dest}: sha256 ${got} does not match ${sha256}`);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(`${file}.part`, bytes);
      await rename(`${file}.part`, file);
      log(`data: ${set}/${dest} <- ${url}`);
    }
  }
}
