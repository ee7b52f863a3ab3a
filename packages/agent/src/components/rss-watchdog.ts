/**
 * Exit code of an agent that stopped itself because its memory stayed over `maxRssMb`: distinct
 * from 1 (bad config or model, which the systemd unit does not restart) so `Restart=on-failure`
 * brings it back. 75 is EX_TEMPFAIL in sysexits.h: "try again later".
 */
export const EXIT_MEMORY_LIMIT = 75;

export interface RssWatchdogOptions {
  /** Resident set size limit in MB; 0 turns the watchdog off. */
  maxRssMb: number;
  /** Default 2 s (reading RSS costs microseconds). */
  intervalMs?: number;
  /** Consecutive samples over the limit before acting, default 5 (one sample is a spike, e.g. two analyzers during a model swap). */
  samples?: number;
  /** While true (a model update in progress) the watchdog waits: the update finishes first. */
  busy?: () => boolean;
  rssBytes?: () => number;
  /** Called once when the limit held: stop gracefully and exit with EXIT_MEMORY_LIMIT. */
  onLimit: (rssMb: number) => void;
}

/**
 * A guard against slow native leaks (onnxruntime-node is reported upstream to leak when sessions
 * are created and released many times in one process): sampled RSS over the limit for a while
 * makes the agent stop in order and let its supervisor restart it. Nothing is lost: the outbox
 * and the gallery are on disk.
 */
export class RssWatchdog {
  private timer?: NodeJS.Timeout;
  private over = 0;
  private fired = false;

  constructor(private readonly o: RssWatchdogOptions) {}

  start(): void {
    if (this.o.maxRssMb <= 0) return;
    this.timer = setInterval(() => this.check(), this.o.intervalMs ?? 2000);
    this.timer.unref();
  }

  /** One sample; returns whether the limit was acted on. */
  check(): boolean {
    if (this.fired || this.o.maxRssMb <= 0) return false;
    const rssMb = (this.o.rssBytes ?? (() => process.memoryUsage.rss()))() / 1024 / 1024;
    this.over = rssMb > this.o.maxRssMb ? this.over + 1 : 0;
    if (this.over < (this.o.samples ?? 5) || this.o.busy?.() === true) return false;
    this.fired = true;
    this.stop();
    this.o.onLimit(Math.round(rssMb));
    return true;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
