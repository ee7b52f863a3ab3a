import { Backoff, sleep, type Emit, type SourceStats } from './source.js';

/**
 * The loop shared by sources that take one frame at a time (HTTP snapshot, webcam): capture,
 * emit, wait out the rest of the period; on failure count it, keep the reason, back off.
 */
export async function pollFrames(
  o: {
    name: string;
    periodMs: number;
    signal: AbortSignal;
    stats: SourceStats;
    capture: () => Promise<Uint8Array>;
    describeError: (err: Error) => string;
    onError: (message: string) => void;
  },
  emit: Emit,
): Promise<void> {
  const backoff = new Backoff();
  while (!o.signal.aborted) {
    const started = Date.now();
    try {
      const bytes = await o.capture();
      o.stats.frames++;
      o.stats.state = 'running';
      backoff.reset();
      void emit({ source: o.name, at: Date.now(), bytes, label: String(o.stats.frames) });
      await sleep(Math.max(0, o.periodMs - (Date.now() - started)), o.signal);
    } catch (err) {
      if (o.signal.aborted) break;
      o.stats.errors++;
      o.stats.restarts++;
      o.stats.state = 'backoff';
      o.stats.lastError = o.describeError(err as Error);
      o.onError(o.stats.lastError);
      await sleep(backoff.next(), o.signal);
    }
  }
  o.stats.state = 'stopped';
}
