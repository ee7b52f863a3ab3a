import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { Backoff, sleep, type Emit, type FrameSource, type SourceStats } from './source.js';

const IMAGE = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heic', '.bmp']);

export interface SeenStore {
  has(key: string): boolean;
  add(key: string): void;
}

/**
 * Images dropped into a directory, including those already there at start (oldest first).
 * A file is read once its size and modification time have stopped changing between two polls
 * (so half-written files wait, including copies that set the final size before the data); each processed file is remembered (name, size, mtime) so a restart repeats nothing.
 */
export class FolderSource implements FrameSource {
  readonly live = false;
  readonly stats: SourceStats = { frames: 0, errors: 0, restarts: 0, state: 'starting' };
  private readonly abort = new AbortController();
  private loop?: Promise<void>;
  private scanned = false;
  private readonly inFlight = new Set<string>();

  constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly pollMs: number,
    private readonly seen: SeenStore,
    private readonly onError: (message: string) => void,
  ) {}

  start(emit: Emit): void {
    this.loop = this.run(emit);
  }

  private async run(emit: Emit): Promise<void> {
    const backoff = new Backoff();
    const versions = new Map<string, string>();
    while (!this.abort.signal.aborted) {
      let entries: { file: string; key: string; mtimeMs: number; size: number }[];
      try {
        const names = (await readdir(this.dir)).filter((f) => IMAGE.has(extname(f).toLowerCase()));
        entries = [];
        for (const f of names) {
          const s = await stat(join(this.dir, f)).catch(() => undefined);
          if (s?.isFile()) entries.push({ file: f, key: `${f}|${s.size}|${Math.round(s.mtimeMs)}`, mtimeMs: s.mtimeMs, size: s.size });
        }
        this.stats.state = 'running';
        backoff.reset();
      } catch (err) {
        this.fail(`cannot read folder ${this.dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        await sleep(backoff.next(), this.abort.signal);
        continue;
      }
      entries.sort((a, b) => a.mtimeMs - b.mtimeMs || a.file.localeCompare(b.file));
      const firstScan = !this.scanned;
      for (const e of entries) {
        if (this.abort.signal.aborted) break;
        if (this.seen.has(e.key) || this.inFlight.has(e.key)) continue;
        const previous = versions.get(e.file);
        versions.set(e.file, e.key);
        // Files there at start are complete; a new one must keep its size and mtime for one poll first.
        if (!firstScan && previous !== e.key) continue;
        try {
          const bytes = await readFile(join(this.dir, e.file));
          this.stats.frames++;
          // Remembered only once processed (a crash before that reprocesses it on restart); until
          // then it is in flight, so the next poll does not queue it a second time.
          this.inFlight.add(e.key);
          await emit({
            source: this.name,
            at: Date.now(),
            bytes,
            label: e.file,
            done: () => {
              this.seen.add(e.key);
              this.inFlight.delete(e.key);
            },
          });
        } catch (err) {
          this.fail(`${e.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        }
      }
      this.scanned = true;
      await sleep(this.pollMs, this.abort.signal);
    }
    this.stats.state = 'stopped';
  }

  private fail(message: string): void {
    this.stats.errors++;
    this.stats.lastError = message;
    this.stats.state = 'backoff';
    this.onError(message);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }
}
