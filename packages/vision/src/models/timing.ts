import type { Session } from './session.js';

/** The part of an onnxruntime session the pipeline uses. */
export type ModelSession = Pick<Session, 'run' | 'inputNames' | 'outputNames' | 'release'>;

/** Accumulated wall time per named stage (ms) and call counts; for benchmarks and metrics. */
export class StageTimes {
  readonly totals = new Map<string, { ms: number; calls: number }>();

  add(stage: string, ms: number): void {
    const t = this.totals.get(stage) ?? { ms: 0, calls: 0 };
    t.ms += ms;
    t.calls += 1;
    this.totals.set(stage, t);
  }

  async time<T>(stage: string, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.add(stage, performance.now() - started);
    }
  }

  ms(stage: string): number {
    return this.totals.get(stage)?.ms ?? 0;
  }

  reset(): void {
    this.totals.clear();
  }
}

/** Wrap a session so every run() adds its time to `stage` (the raw model floor). */
export function timedSession(session: ModelSession, times: StageTimes | undefined, stage: string): ModelSession {
  if (!times) return session;
  return {
    get inputNames() {
      return session.inputNames;
    },
    get outputNames() {
      return session.outputNames;
    },
    run: ((...args: Parameters<Session['run']>) => times.time(stage, () => session.run(...args))) as Session['run'],
    release: () => session.release(),
  };
}
