import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadHubConfig } from './config.js';
import { Hub } from './hub.js';
import { devicePublishAllowed, deviceSubscribeAllowed, matches } from './mqtt/broker.js';

describe('device topic rules', () => {
  it('lets a device publish only on its own topics, retaining only its state', () => {
    expect(devicePublishAllowed('a', 'facefleet/v1/devices/a/events', false)).toBe(true);
    expect(devicePublishAllowed('a', 'facefleet/v1/devices/a/state', true)).toBe(true);
    expect(devicePublishAllowed('a', 'facefleet/v1/devices/a/events', true)).toBe(false);
    expect(devicePublishAllowed('a', 'facefleet/v1/devices/b/events', false)).toBe(false);
    expect(devicePublishAllowed('a', 'facefleet/v1/devices/a/acks', false)).toBe(false);
    expect(devicePublishAllowed('a', 'facefleet/v1/galleries/g/head', false)).toBe(false);
  });

  it('lets a device subscribe only to its inbound topics and its galleries, without wildcards', () => {
    expect(deviceSubscribeAllowed('a', 'facefleet/v1/devices/a/acks', [])).toBe(true);
    expect(deviceSubscribeAllowed('a', 'facefleet/v1/galleries/g1/head', ['g1'])).toBe(true);
    expect(deviceSubscribeAllowed('a', 'facefleet/v1/galleries/g2/head', ['g1'])).toBe(false);
    expect(deviceSubscribeAllowed('a', 'facefleet/v1/devices/b/acks', [])).toBe(false);
    expect(deviceSubscribeAllowed('a', 'facefleet/v1/devices/+/acks', [])).toBe(false);
    expect(deviceSubscribeAllowed('a', 'facefleet/v1/#', [])).toBe(false);
  });

  it('matches MQTT filters', () => {
    expect(matches('facefleet/v1/devices/+/events', 'facefleet/v1/devices/x/events')).toBe(true);
    expect(matches('facefleet/v1/#', 'facefleet/v1/devices/x/events')).toBe(true);
    expect(matches('facefleet/v1/devices/+/events', 'facefleet/v1/devices/x/state')).toBe(false);
  });
});

describe('Hub store and sync log (real SQLite, embedded broker, real models)', () => {
  let dir: string;
  let hub: Hub;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hub-int-'));
    hub = await Hub.start(loadHubConfig({ dataDir: dir, port: '0', mqttPort: '0' }, undefined, {}), () => undefined);
  });
  afterAll(async () => {
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('erases a subject whose delete-after date has passed, through the log', async () => {
    const keep = hub.subjects.create({ name: 'keep' });
    const gone = hub.subjects.create({ name: 'gone', deleteAfter: new Date(Date.now() - 1000).toISOString() });
    await hub.sync.changed(gone.id, 'upsert', ['default']);
    const head = hub.galleries.head('default');
    await hub.purge();
    expect(hub.subjects.get(gone.id)).toBeUndefined();
    expect(hub.subjects.get(keep.id)).toBeDefined();
    expect(hub.galleries.head('default')).toBe(head + 1);
    const changes = hub.sync.changesFor('default', head);
    expect(changes).toMatchObject({ fromSeq: head, toSeq: head + 1, snapshot: false, changes: [{ op: 'delete', subjectId: gone.id }] });
  });

  it('answers a device far behind, or new, with a snapshot, and one at the head with nothing', () => {
    const head = hub.galleries.head('default');
    expect(hub.sync.changesFor('default', 0)).toMatchObject({ snapshot: true, toSeq: head });
    expect(hub.sync.changesFor('default', head)).toMatchObject({ snapshot: false, changes: [] });
    expect(hub.sync.changesFor('default', head + 5)).toMatchObject({ snapshot: true });
  });

  it('keeps device secrets as hashes and refuses revoked devices', () => {
    const { device, secret } = hub.devices.create('d');
    expect(hub.devices.verify(device.id, secret)).toBe(true);
    expect(hub.devices.verify(device.id, `${secret}x`)).toBe(false);
    hub.revokeDevice(device.id);
    expect(hub.devices.verify(device.id, secret)).toBe(false);
    const row = hub.db.prepare('SELECT secret_hash FROM devices WHERE id = ?').get(device.id) as { secret_hash: string };
    expect(row.secret_hash).not.toContain(secret);
  });
});
