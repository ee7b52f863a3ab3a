import { spawn, type ChildProcess } from 'node:child_process';
import { redactUrl, redactUrlCredentials } from '@facefleet/protocol';
import { Backoff, sleep, type Emit, type FrameSource, type SourceStats } from './source.js';

/**
 * RTSP/HTTP streams (pulled, or with `listen` an RTSP camera pushing to us) and video files through an ffmpeg child process, re-encoded to MJPEG at
 * `fps` and split on JPEG end-of-image markers. Files play at their native rate (`-re`), once or
 * looped; a stream that ends or fails is restarted with backoff. Damage inside a stream is
 * counted (ffmpeg's error lines), never fatal.
 */
export class StreamSource implements FrameSource {
  readonly live = true;
  readonly stats: SourceStats = { frames: 0, errors: 0, restarts: 0, state: 'starting' };
  private readonly abort = new AbortController();
  private child?: ChildProcess;
  private loop?: Promise<void>;

  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly opts: { loop: boolean; fps: number; listen?: boolean; ffmpeg?: string },
    private readonly onError: (message: string) => void,
  ) {}

  private get isFile(): boolean {
    return !/^[a-z][a-z0-9+.-]*:\/\//i.test(this.url) || this.url.startsWith('file://');
  }

  start(emit: Emit): void {
    this.loop = this.run(emit);
  }

  private async run(emit: Emit): Promise<void> {
    const backoff = new Backoff();
    while (!this.abort.signal.aborted) {
      const { code, framesThisRun } = await this.once(emit);
      if (this.abort.signal.aborted) break;
      if (framesThisRun > 0) backoff.reset();
      if (this.isFile && !this.opts.loop && code === 0) {
        this.stats.state = 'ended';
        return;
      }
      if (code !== 0 || framesThisRun === 0) this.fail(`ffmpeg exited with ${code ?? 'a signal'} on ${redactUrl(this.url)}`);
      this.stats.state = 'backoff';
      this.stats.restarts++;
      await sleep(backoff.next(), this.abort.signal);
    }
    this.stats.state = 'stopped';
  }

  private once(emit: Emit): Promise<{ code: number | null; framesThisRun: number }> {
    const args = ['-hide_banner', '-loglevel', 'error', '-nostdin'];
    if (this.isFile) {
      if (this.opts.loop) args.push('-stream_loop', '-1');
      args.push('-re');
    } else if (this.url.startsWith('rtsp') && this.opts.listen === true) {
      // The camera pushes to us (RTSP ANNOUNCE/RECORD): ffmpeg listens on the URL's port.
      args.push('-rtsp_flags', 'listen');
    } else if (this.url.startsWith('rtsp')) {
      args.push('-rtsp_transport', 'tcp', '-timeout', '5000000');
    } else if (/^https?:/.test(this.url)) {
      args.push('-rw_timeout', '10000000', '-reconnect', '1', '-reconnect_streamed', '1');
    }
    args.push('-i', this.url, '-an', '-vf', `fps=${this.opts.fps}`, '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '3', 'pipe:1');
    return new Promise((resolve) => {
      let framesThisRun = 0;
      let pending: Buffer = Buffer.alloc(0);
      const child = spawn(this.opts.ffmpeg ?? 'ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      this.child = child;
      this.stats.state = 'running';
      child.on('error', (err) => {
        this.fail(`cannot start ffmpeg: ${err.message}`);
      });
      child.stdout.on('data', (chunk: Buffer) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        for (;;) {
          const start = pending.indexOf(SOI);
          if (start < 0) {
            pending = Buffer.alloc(0);
            break;
          }
          const end = pending.indexOf(EOI, start + 2);
          if (end < 0) {
            if (start > 0) pending = pending.subarray(start);
            break;
          }
          const jpeg = Buffer.from(pending.subarray(start, end + 2));
          pending = pending.subarray(end + 2);
          framesThisRun++;
          this.stats.frames++;
          void emit({ source: this.name, at: Date.now(), bytes: jpeg, label: String(this.stats.frames) });
        }
      });
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (text: string) => {
        // ffmpeg quotes the input URL in its errors: a camera's password must not reach the log.
        for (const line of text.split('\n').filter((l) => l.trim() !== '')) this.fail(`ffmpeg: ${redactUrlCredentials(line.trim(), [this.url])}`);
      });
      child.on('close', (code) => resolve({ code, framesThisRun }));
    });
  }

  private fail(message: string): void {
    this.stats.errors++;
    this.stats.lastError = message;
    this.onError(message);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.child?.kill('SIGTERM');
    await this.loop;
  }
}

const SOI = Buffer.from([0xff, 0xd8]);
const EOI = Buffer.from([0xff, 0xd9]);
