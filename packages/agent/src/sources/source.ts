/** One captured frame: encoded image bytes, as every source produces them (one decode path). */
export interface Frame {
  source: string;
  at: number;
  bytes: Uint8Array;
  /** File name (folder source) or sequence number, for logs and events. */
  label: string;
  /** Called once the frame is fully processed (its events stored), or dropped. */
  done?: () => void;
}

export type SourceState = 'starting' | 'running' | 'backoff' | 'ended' | 'stopped';

export interface SourceStats {
  frames: number;
  errors: number;
  restarts: number;
  state: SourceState;
  lastError?: string;
}

/**
 * Delivers frames to `emit`. Live sources do not wait (the pipeline drops when it is behind);
 * discrete sources (folder) await `emit`, so no file is skipped.
 */
export type Emit = (frame: Frame) => Promise<void>;

export interface FrameSource {
  readonly name: string;
  readonly live: boolean;
  readonly stats: SourceStats;
  start(emit: Emit): void;
  stop(): Promise<void>;
}

/** Exponential backoff from 1 s to 30 s, reset after a success. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly baseMs = 1000,
    private readonly maxMs = 30_000,
  ) {}
  next(): number {
    const ms = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt++;
    return ms;
  }
  reset(): void {
    this.attempt = 0;
  }
}

/** A sleep that `stop` can cut short. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
