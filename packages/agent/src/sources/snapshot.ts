import { Backoff, sleep, type Emit, type FrameSource, type SourceStats } from './source.js';

/** Polls an HTTP(S) JPEG snapshot URL, as most IP cameras offer; failures back off. */
export class SnapshotSource implements FrameSource {
  readonly live = true;
  readonly stats: SourceStats = { frames: 0, errors: 0, restarts: 0, state: 'starting' };
  private readonly abort = new AbortController();
  private loop?: Promise<void>;

  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly intervalMs: number,
    private readonly onError: (message: string) => void,
  ) {}

  start(emit: Emit): void {
    this.loop = this.run(emit);
  }

  private async run(emit: Emit): Promise<void> {
    const backoff = new Backoff();
    while (!this.abort.signal.aborted) {
      const started = Date.now();
      try {
        const res = await fetch(this.url, { signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(Math.max(2000, this.intervalMs * 2))]) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const bytes = new Uint8Array(await res.arrayBuffer());
        this.stats.frames++;
        this.stats.state = 'running';
        backoff.reset();
        void emit({ source: this.name, at: Date.now(), bytes, label: String(this.stats.frames) });
        await sleep(Math.max(0, this.intervalMs - (Date.now() - started)), this.abort.signal);
      } catch (err) {
        if (this.abort.signal.aborted) break;
        this.stats.errors++;
        this.stats.state = 'backoff';
        this.stats.lastError = `snapshot ${this.url}: ${(err as Error).message}`;
        this.onError(this.stats.lastError);
        await sleep(backoff.next(), this.abort.signal);
      }
    }
    this.stats.state = 'stopped';
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }
}
