import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FolderSource } from './folder.js';
import type { Frame } from './source.js';

describe('FolderSource', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('reads each file once even when processing is slower than polling, and remembers it after processing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'folder-src-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'a.jpg'), 'a');
    writeFileSync(join(dir, 'notes.txt'), 'ignored');
    const seen = new Set<string>();
    const frames: Frame[] = [];
    const src = new FolderSource('f', dir, 20, { has: (k) => seen.has(k), add: (k) => void seen.add(k) }, () => undefined);
    src.start(async (frame) => {
      frames.push(frame);
      // A slow pipeline: the frame is done long after several polls.
      setTimeout(() => frame.done?.(), 150);
      await Promise.resolve();
    });
    await new Promise((r) => setTimeout(r, 100));
    writeFileSync(join(dir, 'b.png'), 'b');
    await new Promise((r) => setTimeout(r, 400));
    await src.stop();
    expect(frames.map((f) => f.label)).toEqual(['a.jpg', 'b.png']);
    expect(seen.size).toBe(2);
    // A restart with the same memory reads nothing again.
    const again: Frame[] = [];
    const src2 = new FolderSource('f', dir, 20, { has: (k) => seen.has(k), add: (k) => void seen.add(k) }, () => undefined);
    src2.start((frame) => {
      again.push(frame);
      return Promise.resolve();
    });
    await new Promise((r) => setTimeout(r, 100));
    await src2.stop();
    expect(again).toEqual([]);
  });
});
