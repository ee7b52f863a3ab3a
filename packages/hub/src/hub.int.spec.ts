import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { topics, type SyncChangesMessage } from '@facefleet/protocol';
import { loadHubConfig } from './config.js';
import { Hub } from './hub.js';
import { devicePublishAllowed, deviceSubscribeAllowed, matches } from './mqtt/broker.js';
import type { SqliteStore } from './store/sqlite.js';

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
    const keep = await hub.subjects.create({ name: 'keep' });
    const gone = await hub.subjects.create({ name: 'gone', deleteAfter: new Date(Date.now() - 1000).toISOString() });
    await hub.sync.changed(gone.id, 'upsert', ['default']);
    const head = await hub.galleries.head('default');
    await hub.purge();
    expect(await hub.subjects.get(gone.id)).toBeUndefined();
    expect(await hub.subjects.get(keep.id)).toBeDefined();
    expect(await hub.galleries.head('default')).toBe(head + 1);
    const changes = await hub.sync.changesFor('default', head);
    expect(changes).toMatchObject({ fromSeq: head, toSeq: head + 1, snapshot: false, changes: [{ op: 'delete', subjectId: gone.id }] });
  });

  it('compacts gallery logs it will never serve, and answers a device behind a compacted gap with a snapshot', async () => {
    const g = await hub.galleries.create('compaction');
    const s = await hub.subjects.create({ name: 'often-changed' });
    await hub.galleries.addMember(g.id, s.id);
    for (let i = 0; i < 1004; i++) await hub.galleries.append([g.id], 'upsert', s.id);
    const head = await hub.galleries.head(g.id);
    expect(head).toBe(1005);
    await hub.purge();
    const left = await hub.galleries.since(g.id, 0, 10_000);
    expect([left.length, left[0]!.seq]).toEqual([1000, 6]); // entries 1..5 are 1,000 or more below the head
    expect(await hub.sync.changesFor(g.id, 5)).toMatchObject({ snapshot: false, fromSeq: 5, toSeq: head, changes: [{ op: 'upsert', subjectId: s.id }] });
    expect(await hub.sync.changesFor(g.id, 4)).toMatchObject({ snapshot: true, fromSeq: 0, toSeq: head });
    // A device the log was compacted past while it asked (a race, simulated): snapshot, not a partial delta.
    await hub.galleries.compactLogs(3);
    expect(await hub.sync.changesFor(g.id, head - 10)).toMatchObject({ snapshot: true, fromSeq: 0, toSeq: head, changes: [{ op: 'upsert', subjectId: s.id }] });
    expect(await hub.sync.changesFor(g.id, head - 2)).toMatchObject({ snapshot: false, fromSeq: head - 2 });
  });

  it('answers a device far behind, or new, with a snapshot, and one at the head with nothing', async () => {
    const head = await hub.galleries.head('default');
    expect(await hub.sync.changesFor('default', 0)).toMatchObject({ snapshot: true, toSeq: head });
    expect(await hub.sync.changesFor('default', head)).toMatchObject({ snapshot: false, changes: [] });
    expect(await hub.sync.changesFor('default', head + 5)).toMatchObject({ snapshot: true });
  });

  it('cuts a large snapshot into parts of the configured size and serves each part on request', async () => {
    const small = await Hub.start(loadHubConfig({ dataDir: join(dir, 'parts'), port: '0', mqttPort: '0', syncPartBytes: '8192' }, undefined, {}), () => undefined);
    try {
      for (let i = 0; i < 40; i++) {
        const s = await small.subjects.create({ name: `s${i}` });
        await small.subjects.addTemplate({ subjectId: s.id, modelId: 'm', vector: new Float32Array(512).fill(i / 40), quality: 1, sourceSha256: `x${i}` });
        await small.sync.changed(s.id, 'upsert', ['default']);
      }
      const head = await small.galleries.head('default');
      const first = JSON.parse((await small.sync.answer('default', 0)).toString()) as SyncChangesMessage;
      expect(first.snapshot).toBe(true);
      expect(first.toSeq).toBe(head);
      const count = first.part!.count;
      expect(count).toBeGreaterThanOrEqual(10); // 40 x ~2.8 kB in 8 kB parts
      const names: string[] = [];
      for (let i = 0; i < count; i++) {
        const m = JSON.parse((await small.sync.answer('default', 0, { toSeq: head, part: i })).toString()) as SyncChangesMessage;
        expect(m.part).toEqual({ index: i, count });
        expect(Buffer.byteLength(JSON.stringify(m))).toBeLessThan(8192 + 4096);
        for (const c of m.changes) if (c.op === 'upsert') names.push(c.name);
      }
      expect(names.sort()).toEqual(Array.from({ length: 40 }, (_, i) => `s${i}`).sort());
      // A resume of a snapshot the hub no longer has starts the current one over.
      const restarted = JSON.parse((await small.sync.answer('default', 0, { toSeq: head - 3, part: 4 })).toString()) as SyncChangesMessage;
      expect(restarted.part).toEqual({ index: 0, count });
    } finally {
      await small.close();
    }
  });

  it('serves MQTT over TLS when given a certificate, and refuses plain clients then', async () => {
    const tlsDir = join(dir, 'tls');
    mkdirSync(tlsDir);
    const cert = join(tlsDir, 'cert.pem');
    const key = join(tlsDir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const secure = await Hub.start(loadHubConfig({ dataDir: join(dir, 'tls-hub'), port: '0', mqttPort: '0', mqttTlsCert: cert, mqttTlsKey: key }, undefined, {}), () => undefined);
    try {
      expect(secure.broker.url).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
      const { device, secret } = await secure.devices.create('tls-device');
      const ok = await mqtt.connectAsync(secure.broker.url, { clientId: device.id, username: device.id, password: secret, ca: readFileSync(cert), reconnectPeriod: 0 });
      expect((await ok.subscribeAsync(topics.acks(device.id), { qos: 1 }))[0]!.qos).toBe(1);
      await ok.endAsync(true);
      const plain = secure.broker.url.replace('mqtts:', 'mqtt:');
      const client = mqtt.connect(plain, { clientId: device.id, username: device.id, password: secret, reconnectPeriod: 0, connectTimeout: 2000 });
      const outcome = await new Promise((r) => {
        client.once('connect', () => r('connected'));
        client.once('close', () => r('closed'));
        client.once('error', () => r('error'));
      });
      client.end(true);
      expect(outcome).not.toBe('connected');
    } finally {
      await secure.close();
    }
    expect(() => loadHubConfig({ dataDir: dir, mqttTlsCert: cert }, undefined, {})).toThrow(/go together/);
  });

  it('keeps device secrets as hashes and refuses revoked devices', async () => {
    const { device, secret } = await hub.devices.create('d');
    expect(await hub.devices.verify(device.id, secret)).toBe(true);
    expect(await hub.devices.verify(device.id, `${secret}x`)).toBe(false);
    await hub.revokeDevice(device.id);
    expect(await hub.devices.verify(device.id, secret)).toBe(false);
    const row = (hub.store as SqliteStore).db.prepare('SELECT secret_hash FROM devices WHERE id = ?').get(device.id) as { secret_hash: string };
    expect(row.secret_hash).not.toContain(secret);
  });
});
