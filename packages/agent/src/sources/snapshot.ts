import { redactUrlCredentials } from '@facefleet/protocol';
import { pollFrames } from './poll.js';
import type { Emit, FrameSource, SourceStats } from './source.js';

/** Polls an HTTP(S) JPEG snapshot URL, as most IP cameras offer; failures back off. */
export class SnapshotSource implements FrameSource {
  readonly live = true;
  readonly stats: SourceStats = { frames: 0, errors: 0, restarts: 0, state: 'starting' };
  private readonly abort = new AbortController();
  private loop?: Promise<void>;
  /** The URL without credentials (fetch refuses them in URLs), and them as Basic auth. */
  private readonly target: string;
  private readonly headers: Record<string, string> = {};

  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly intervalMs: number,
    private readonly onError: (message: string) => void,
  ) {
    const u = new URL(url);
    if (u.username !== '' || u.password !== '') {
      this.headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
      u.username = '';
      u.password = '';
    }
    this.target = u.toString();
  }

  start(emit: Emit): void {
    this.loop = this.run(emit);
  }

  private run(emit: Emit): Promise<void> {
    return pollFrames(
      {
        name: this.name,
        periodMs: this.intervalMs,
        signal: this.abort.signal,
        stats: this.stats,
        capture: async () => {
          const timeout = AbortSignal.timeout(Math.max(2000, this.intervalMs * 2));
          const res = await fetch(this.target, { headers: this.headers, signal: AbortSignal.any([this.abort.signal, timeout]) });
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          return new Uint8Array(await res.arrayBuffer());
        },
        // fetch's own message is "fetch failed"; the cause says why (refused, timed out, bad certificate).
        describeError: (err) => redactUrlCredentials(`snapshot ${this.url}: ${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}`, [this.url]),
        onError: this.onError,
      },
      emit,
    );
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }
}
