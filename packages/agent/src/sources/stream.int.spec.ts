import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { hasTool } from '../../../../test/helpers.js';
import { StreamSource } from './stream.js';

describe.runIf(hasTool('ffmpeg'))('StreamSource with real ffmpeg', () => {
  it('keeps a camera password out of its errors when the stream cannot be opened', async () => {
    // A port that accepts and closes at once: ffmpeg fails quickly and says so, quoting the URL.
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const errors: string[] = [];
    const src = new StreamSource('door', `rtsp://admin:hunter2@127.0.0.1:${port}/stream1`, { loop: false, fps: 2 }, (m) => errors.push(m));
    src.start(() => Promise.resolve());
    const started = Date.now();
    while (!errors.some((e) => e.startsWith('ffmpeg exited')) && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 100));
    await src.stop();
    await new Promise((r) => server.close(() => r(undefined)));
    expect(errors.find((e) => e.startsWith('ffmpeg exited'))).toMatch(new RegExp(`^ffmpeg exited with \\S+ on rtsp://\\*\\*\\*@127\\.0\\.0\\.1:${port}/stream1$`));
    expect(errors.join('\n')).not.toContain('hunter2');
    expect(src.stats.restarts).toBeGreaterThanOrEqual(1);
  }, 30_000);
});
