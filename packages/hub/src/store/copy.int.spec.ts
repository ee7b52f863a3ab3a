import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@facefleet/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { copySqliteToPostgres } from './copy.js';
import type { HubStore } from './ports.js';
import { openSqliteStore } from './sqlite.js';
import { describePostgres, testModel, testSchema } from './store.contract.js';

const cropKey = randomBytes(32);
const vector = (seed: number): Float32Array => Float32Array.from({ length: 16 }, (_, i) => Math.cos(seed * 7 + i));
const sha = (n: number): string => n.toString(16).padStart(64, '0');

interface Filled {
  apiKey: string;
  secret: string;
  deviceId: string;
  revokedId: string;
  crop: { subjectId: string; sourceSha256: string; data: Buffer };
}

/** A SQLite hub with a bit of everything, written through the store interface. */
async function fill(s: HubStore): Promise<Filled> {
  const apiKey = (await s.keys.create('admin')).key;
  const ada = await s.subjects.create({ name: 'Ada', consentAt: '2024-01-02T03:04:05.678Z', purpose: 'staff', deleteAfter: '2030-01-01T00:00:00.000Z' });
  const bob = await s.subjects.create({ name: 'Bob' });
  const cy = await s.subjects.create({ name: 'Cy' });
  for (const [i, subj] of [ada, ada, bob, cy].entries()) await s.subjects.addTemplate({ subjectId: subj.id, modelId: 'w600k', vector: vector(i), quality: 0.5 + i / 10, sourceSha256: sha(i) });
  const g = await s.galleries.create('lobby');
  await s.galleries.addMember(g.id, ada.id);
  await s.galleries.addMember(g.id, bob.id);
  await s.galleries.removeMember(g.id, bob.id);
  await s.galleries.append(['default', g.id], 'upsert', ada.id);
  const erased = await s.subjects.create({ name: 'Gone' });
  await s.galleries.eraseSubject(erased.id);

  const { device, secret } = await s.devices.create('door');
  await s.devices.setGalleries(device.id, [g.id, 'default']);
  await s.devices.setOnline(device.id, true, '2.0.0');
  await s.devices.setStatus(device.id, { models: { detector: 'yunet', embedder: 'w600k' }, outboxDepth: 3, agentVersion: '2.0.1', galleries: { default: 4, [g.id]: 2 } });
  const revoked = (await s.devices.create('old')).device;
  await s.devices.revoke(revoked.id);

  await s.events.insertMany(
    Array.from({ length: 7 }, (_, i) => ({
      id: `event-${i.toString().padStart(4, '0')}`,
      deviceId: device.id,
      type: i % 3 ? ('recognition' as const) : ('unknown' as const),
      subjectId: i % 3 ? ada.id : null,
      subject: i % 3 ? 'Ada' : null,
      similarity: 0.3 + i / 17,
      at: new Date(Date.UTC(2024, 4, 1, 12, 0, i)).toISOString(),
      modelId: 'w600k',
    })),
  );

  const model = testModel('w600k-next');
  await s.models.insert(model);
  await s.models.setSigned(model.id, { seed: 1, shape: [1, 3, 112, 112], tolerance: 0.99, output: [0.1, 0.2] }, 'k1', 'c2ln');
  const ro = await s.rollouts.create({
    modelId: model.id,
    kind: 'embedder',
    target: { devices: [device.id] },
    waves: [100],
    gates: { maxFailureRate: 0, soakSeconds: 10, minHealthyPercent: 100 },
    devices: [{ deviceId: device.id, wave: 0, previousModelId: 'w600k' }],
  });
  await s.rollouts.update(ro.id, { state: 'paused', reason: 'checking', waveDoneAt: '2024-05-02T00:00:00.000Z' });
  await s.rollouts.setDevice(ro.id, device.id, 'testing');
  await s.models.assign(device.id, 'embedder', model.id, ro.id);

  const crop = { subjectId: ada.id, sourceSha256: sha(0), data: randomBytes(112 * 112 * 3) };
  await s.crops.put({ ...crop, width: 112, height: 112 });
  return { apiKey, secret, deviceId: device.id, revokedId: revoked.id, crop };
}

/** Everything the interface can read back, for comparing two stores. */
async function snapshot(s: HubStore) {
  const subjects = await s.subjects.list({ limit: 1000 });
  const galleries = await s.galleries.list();
  const devices = await s.devices.list();
  const rollouts = await s.rollouts.list();
  const perGallery = await Promise.all(galleries.map(async (g) => ({ log: await s.galleries.since(g.id, 0, 1000), members: await s.galleries.members(g.id), head: await s.galleries.head(g.id) })));
  const perDevice = await Promise.all(
    devices.map(async (d) => ({ galleries: await s.devices.galleries(d.id), seqs: await s.devices.seqs(d.id), models: await s.models.assigned(d.id) })),
  );
  return {
    subjects,
    templates: (await s.subjects.templates(subjects.map((x) => x.id))).sort((a, b) => (a.id < b.id ? -1 : 1)),
    counts: await s.subjects.count(),
    galleries,
    perGallery,
    devices,
    perDevice,
    brokerAccounts: await s.devices.brokerAccounts(),
    events: await s.events.list({}, 1000),
    models: await s.models.list(),
    rollouts,
    rolloutDevices: await Promise.all(rollouts.map((r) => s.rollouts.devices(r.id))),
    crops: await s.crops.sources(),
    missing: await s.crops.missingFor(['w600k']),
  };
}

await describePostgres('copySqliteToPostgres', ({ url, postgres, dropSchema }) => {
  describe('copySqliteToPostgres', () => {
    const schema = testSchema();
    let dir = '';
    let sqlitePath = '';
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'ff-copy-'));
      sqlitePath = join(dir, 'hub.db');
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    // Loaded here rather than imported: copy.js loads pg, which may not load where PostgreSQL tests are skipped.
    const copy = async (...args: Parameters<typeof copySqliteToPostgres>): ReturnType<typeof copySqliteToPostgres> => (await import('./copy.js')).copySqliteToPostgres(...args);
    afterAll(() => dropSchema(schema));

    it('says so when the SQLite file is missing', async () => {
      await expect(copy(join(dir, 'absent.db'), url, { log: () => undefined })).rejects.toThrow(/no SQLite hub database at .*absent\.db/);
    });

    it('copies every table so the PostgreSQL store reads back the same hub', async () => {
      const source = await openSqliteStore(sqlitePath, { cropKey });
      const filled = await fill(source);
      const before = await snapshot(source);
      await source.close();

      const logs: string[] = [];
      const counts = await copy(sqlitePath, url, { schema, log: (m) => logs.push(m), batch: 2 });
      expect(counts).toMatchObject({ api_keys: 1, subjects: 3, templates: 4, galleries: 2, gallery_members: 1, devices: 2, device_galleries: 2, device_gallery_seq: 2, events: 7, models: 1, device_models: 1, rollouts: 1, rollout_devices: 1, face_crops: 1 });
      expect(counts.gallery_log).toBe(before.perGallery.reduce((n, g) => n + g.log.length, 0));
      expect(logs.some((m) => /^subjects: 3 rows$/.test(m))).toBe(true);
      expect(logs.join('\n')).not.toMatch(/password/);

      const target = await postgres.openPostgresStore(url, { cropKey, schema });
      try {
        expect(await snapshot(target)).toEqual(before);
        expect(await target.keys.find(filled.apiKey)).toMatchObject({ role: 'admin' });
        expect(await target.devices.verify(filled.deviceId, filled.secret)).toBe(true);
        expect(await target.devices.verify(filled.revokedId, filled.secret)).toBe(false);
        const crop = await target.crops.get(filled.crop.subjectId, filled.crop.sourceSha256);
        expect(Buffer.from(crop!.data).equals(filled.crop.data)).toBe(true);
        const head = await target.galleries.head('default');
        expect(await target.galleries.append(['default'], 'upsert', filled.crop.subjectId)).toEqual([{ galleryId: 'default', seq: head + 1 }]);
      } finally {
        await target.close();
      }
    });

    it('refuses to copy into a database that holds hub data', async () => {
      const err = await copy(sqlitePath, url, { schema, log: () => undefined }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/already holds hub data \(3 subjects, 2 devices, 7 events, 1 galleries, 1 API keys, \d+ rollouts, 1 face crops\)/);
    });

    it('refuses a target that holds only API keys (a second migrate, or a key created there first)', async () => {
      const keysOnly = testSchema();
      try {
        const target = await postgres.openPostgresStore(url, { cropKey, schema: keysOnly });
        await target.keys.create('admin');
        await target.close();
        const err = await copy(sqlitePath, url, { schema: keysOnly, log: () => undefined }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as Error).message).toMatch(/already holds hub data \(1 API keys\)/);
      } finally {
        await dropSchema(keysOnly);
      }
    });
  });
});
