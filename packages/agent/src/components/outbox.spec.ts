import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventMessage } from '@facefleet/protocol';
import { openAgentDb } from '../adapters/agent-db.js';
import { Outbox } from './outbox.js';

const event = (id: string): EventMessage => ({
  id: `event-${id}`, deviceId: 'd1', type: 'recognition', subjectId: 's1', subject: 'Ann', similarity: 0.6, at: new Date(0).toISOString(), modelId: 'm',
});

function setup(limits = { maxEvents: 100, maxAgeMs: 60_000 }) {
  let now = 1_000_000;
  const db = openAgentDb(':memory:');
  const outbox = new Outbox(db, limits, () => now);
  return { db, outbox, advance: (ms: number) => (now += ms) };
}

describe('Outbox', () => {
  it('keeps an event pending until its id is acknowledged, resending after the retry interval', () => {
    const { outbox, advance } = setup();
    outbox.add(event('a'));
    outbox.add(event('b'));
    expect(outbox.due(10, 5000).map((e) => e.id)).toEqual(['event-a', 'event-b']);
    outbox.markSent(['event-a', 'event-b']);
    expect(outbox.due(10, 5000)).toEqual([]); // in flight
    advance(5000);
    expect(outbox.due(10, 5000)).toHaveLength(2); // no ack yet: due again
    expect(outbox.markDelivered(['event-a', 'unknown-id'])).toBe(1);
    expect(outbox.markDelivered(['event-a'])).toBe(0); // a duplicate ack changes nothing
    expect(outbox.depth()).toBe(1);
    expect(outbox.due(10, 5000).map((e) => e.id)).toEqual(['event-b']);
    expect(outbox.list().map((s) => [s.event.id, s.delivered])).toEqual([['event-b', false], ['event-a', true]]);
  });

  it('stores an event id once', () => {
    const { outbox } = setup();
    outbox.add(event('a'));
    outbox.add(event('a'));
    expect(outbox.depth()).toBe(1);
  });

  it('makes in-flight events due at once after a reconnect', () => {
    const { outbox } = setup();
    outbox.add(event('a'));
    outbox.markSent(['event-a']);
    outbox.resetInFlight();
    expect(outbox.due(10, 5000)).toHaveLength(1);
  });

  it('drops the oldest undelivered events beyond its size and counts them', () => {
    const { outbox, advance } = setup({ maxEvents: 3, maxAgeMs: 60_000 });
    for (const id of ['1', '2', '3', '4', '5']) {
      outbox.add(event(id));
      advance(1);
    }
    expect(outbox.depth()).toBe(3);
    expect(outbox.due(10, 0).map((e) => e.id)).toEqual(['event-3', 'event-4', 'event-5']);
    expect(outbox.counters()).toEqual({ droppedFull: 2 });
  });

  it('drops undelivered events older than the age limit and counts them', () => {
    const { outbox, advance } = setup({ maxEvents: 100, maxAgeMs: 10_000 });
    outbox.add(event('old'));
    advance(20_000);
    outbox.add(event('new'));
    expect(outbox.due(10, 0).map((e) => e.id)).toEqual(['event-new']);
    expect(outbox.counters()).toEqual({ droppedAge: 1 });
  });

  it('keeps every stored event across a reopen of the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    try {
      const path = join(dir, 'agent.db');
      const db1 = openAgentDb(path);
      new Outbox(db1, { maxEvents: 10, maxAgeMs: 60_000 }).add(event('x'));
      db1.close();
      const db2 = openAgentDb(path);
      expect(new Outbox(db2, { maxEvents: 10, maxAgeMs: 60_000 }).depth()).toBe(1);
      expect((db2.pragma('journal_mode', { simple: true }) as string).toLowerCase()).toBe('wal');
      db2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
