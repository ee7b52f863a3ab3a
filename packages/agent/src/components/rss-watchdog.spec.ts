import { describe, expect, it } from 'vitest';
import { EXIT_MEMORY_LIMIT, RssWatchdog } from './rss-watchdog.js';

const MB = 1024 * 1024;

describe('RSS watchdog', () => {
  it('acts once, after the limit held for consecutive samples, and not during a model update', () => {
    let rss = 100 * MB;
    let busy = false;
    const fired: number[] = [];
    const w = new RssWatchdog({ maxRssMb: 200, samples: 3, rssBytes: () => rss, busy: () => busy, onLimit: (mb) => fired.push(mb) });
    rss = 250 * MB;
    expect([w.check(), w.check()]).toEqual([false, false]);
    rss = 150 * MB; // a spike that went away starts the count again
    expect(w.check()).toBe(false);
    rss = 250 * MB;
    busy = true;
    expect([w.check(), w.check(), w.check(), w.check()]).toEqual([false, false, false, false]);
    busy = false;
    expect(w.check()).toBe(true);
    expect(w.check()).toBe(false);
    expect(fired).toEqual([250]);
    expect(EXIT_MEMORY_LIMIT).not.toBe(1); // 1 means bad config: systemd does not restart it
  });

  it('is off at 0', () => {
    const w = new RssWatchdog({ maxRssMb: 0, samples: 1, rssBytes: () => 10_000 * MB, onLimit: () => expect.unreachable() });
    w.start();
    expect(w.check()).toBe(false);
    w.stop();
  });
});
