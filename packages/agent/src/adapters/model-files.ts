import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadManifest, modelsDir } from '@facefleet/vision';

/**
 * Model files a device keeps for fleet updates: `<dataDir>/models/<sha256>.onnx` (and a `.part`
 * while downloading). Named by content, so the same model assigned again (a rollback) is found
 * without a download.
 */
export class ModelFiles {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'models');
  }

  path(sha256: string): string {
    return join(this.dir, `${sha256}.onnx`);
  }

  partPath(sha256: string): string {
    return join(this.dir, `${sha256}.onnx.part`);
  }

  /** Whether a path is one of ours (files elsewhere, such as the project's models, are never deleted). */
  owns(path: string): boolean {
    return path.startsWith(this.dir + '/') || path.startsWith(this.dir + '\\');
  }

  /**
   * A file that should hold this content: ours first, then the project's model files whose
   * manifest entry has this sha256. Unverified: the caller hashes it.
   */
  find(sha256: string): string | undefined {
    const own = this.path(sha256);
    if (existsSync(own)) return own;
    let manifest;
    try {
      manifest = loadManifest();
    } catch {
      return undefined;
    }
    const entry = manifest.models.find((m) => m.sha256 === sha256);
    if (!entry) return undefined;
    const project = join(modelsDir(), entry.file);
    return existsSync(project) ? project : undefined;
  }

  remove(path: string): void {
    if (this.owns(path)) rmSync(path, { force: true });
  }

  /** Delete our model files whose content is not in `keep`, and partial downloads not in `keepParts`. */
  prune(keep: ReadonlySet<string>, keepParts: ReadonlySet<string> = new Set()): string[] {
    if (!existsSync(this.dir)) return [];
    const removed: string[] = [];
    for (const name of readdirSync(this.dir)) {
      const m = /^([0-9a-f]{64})\.onnx(\.part)?$/.exec(name);
      if (!m) continue;
      const sha = m[1]!;
      if (m[2] === undefined ? keep.has(sha) : keepParts.has(sha)) continue;
      rmSync(join(this.dir, name), { force: true });
      removed.push(name);
    }
    return removed;
  }
}

/** sha256 of a file, streamed (a 14 MB model hashes in ~40 ms). */
export function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const stream = createReadStream(path, signal ? { signal } : {});
    stream.on('data', (chunk) => hash.update(chunk));
    stream.on('error', reject);
    stream.on('end', () => resolve(hash.digest('hex')));
  });
}
