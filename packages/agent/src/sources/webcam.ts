import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import NodeWebcam from 'node-webcam';
import { pollFrames } from './poll.js';
import type { Emit, FrameSource, SourceStats } from './source.js';

interface Camera {
  capture(location: string, cb: (err: Error | null, data: unknown) => void): void;
}

/**
 * A USB/V4L2 camera through node-webcam, which runs `fswebcam` (Debian package fswebcam) for
 * each shot. A missing camera or a failing capture is counted and retried with backoff.
 */
export class WebcamSource implements FrameSource {
  readonly live = true;
  readonly stats: SourceStats = { frames: 0, errors: 0, restarts: 0, state: 'starting' };
  private readonly abort = new AbortController();
  private loop?: Promise<void>;
  private readonly dir = mkdtempSync(join(tmpdir(), 'facefleet-webcam-'));
  private readonly camera: Camera;

  constructor(
    readonly name: string,
    opts: { device: string; width: number; height: number; fps: number },
    private readonly onError: (message: string) => void,
  ) {
    this.fps = opts.fps;
    this.camera = (NodeWebcam as { create(o: Record<string, unknown>): Camera }).create({
      width: opts.width,
      height: opts.height,
      quality: 90,
      delay: 0,
      saveShots: true,
      output: 'jpeg',
      device: opts.device,
      callbackReturn: 'buffer',
      verbose: false,
    });
  }

  private readonly fps: number;

  start(emit: Emit): void {
    this.loop = this.run(emit);
  }

  private shot(): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.camera.capture(join(this.dir, 'shot'), (err, data) => {
        if (err) reject(err);
        else if (!Buffer.isBuffer(data) || data.length === 0) reject(new Error('empty capture'));
        else resolve(new Uint8Array(data));
      });
    });
  }

  private run(emit: Emit): Promise<void> {
    return pollFrames(
      {
        name: this.name,
        periodMs: 1000 / this.fps,
        signal: this.abort.signal,
        stats: this.stats,
        capture: () => this.shot(),
        describeError: (err) => `webcam: ${err.message.split('\n')[0] ?? ''}`,
        onError: this.onError,
      },
      emit,
    );
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
