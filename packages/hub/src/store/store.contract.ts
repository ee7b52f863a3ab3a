import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EventMessage, ModelManifestInput, SelfTestSpec } from '@facefleet/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkMosquittoPasswordHash } from '../mqtt/mosquitto-hash.js';
import { DEFAULT_GALLERY, type Gates, type HubStore, type ModelRow } from './ports.js';
import type * as Postgres from './postgres.js';

/**
 * The behaviour every HubStore must have, run against each engine (store.contract.int.spec.ts).
 * One store serves a whole run, so cases make their own data (names carry a random tag) and
 * check global numbers as differences; they never assume an empty store.
 */
export function storeContract(name: string, open: () => Promise<HubStore>, cleanup?: () => Promise<void>): void {
  describe(`${name} store contract`, () => {
    let store: HubStore | undefined;
    const get = (): HubStore => {
      if (store === undefined) throw new Error(`the ${name} store did not open`);
      return store;
    };
    beforeAll(async () => {
      store = await open();
    });
    afterAll(async () => {
      await store?.close();
      await cleanup?.();
    });

    it('names its engine and location', () => {
      expect(['sqlite', 'postgres']).toContain(get().engine);
      expect(get().location).not.toBe('');
    });
    keysCases(get);
    subjectsCases(get);
    galleriesCases(get);
    devicesCases(get);
    eventsCases(get);
    modelsCases(get);
    rolloutsCases(get);
    cropsCases(get);
    leasesCases(get, open);
  });
}

type Get = () => HubStore;

/** A random tag that keeps one case's rows apart from the others'. */
const tag = (): string => randomBytes(4).toString('hex');
const sha = (): string => randomBytes(32).toString('hex');
const byteOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const vector = (seed: number, n = 8): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i) / 3);

/** Times come back exactly as `Date.toISOString()` writes them, whatever the engine keeps. */
function expectIso(value: string | null | undefined): void {
  expect(typeof value).toBe('string');
  expect(new Date(value!).toISOString()).toBe(value);
}

function keysCases(get: Get): void {
  describe('keys', () => {
    it('creates keys shown once and finds them by the key only', async () => {
      const k = await get().keys.create('operator');
      expect(k.key).toMatch(/^ffk_[A-Za-z0-9_-]{32}$/);
      expect(k.role).toBe('operator');
      expect(await get().keys.find(k.key)).toEqual({ id: k.id, role: 'operator' });
      expect(await get().keys.find(`${k.key}x`)).toBeUndefined();
      const other = await get().keys.create('viewer');
      expect(other.id).not.toBe(k.id);
      expect(await get().keys.find(other.key)).toEqual({ id: other.id, role: 'viewer' });
    });
  });
}

function subjectsCases(get: Get): void {
  describe('subjects', () => {
    it('creates, gets and updates a subject', async () => {
      const consentAt = '2024-03-01T10:00:00.000Z';
      const s = await get().subjects.create({ name: `Ada ${tag()}`, consentAt, purpose: 'staff' });
      expect(s).toMatchObject({ consentAt, purpose: 'staff', deleteAfter: null, templates: 0 });
      expectIso(s.createdAt);
      expect(s.updatedAt).toBe(s.createdAt);
      expect(await get().subjects.get(s.id)).toEqual(s);
      expect(await get().subjects.get('no-such-subject')).toBeUndefined();

      const u = await get().subjects.update(s.id, { purpose: null, deleteAfter: '2030-01-01T00:00:00.000Z' });
      expect(u).toMatchObject({ id: s.id, name: s.name, consentAt, purpose: null, deleteAfter: '2030-01-01T00:00:00.000Z' });
      expectIso(u!.updatedAt);
      expect(u!.updatedAt >= s.updatedAt).toBe(true);
      expect(await get().subjects.update(s.id, { name: 'Renamed' })).toMatchObject({ name: 'Renamed', purpose: null, consentAt });
      expect(await get().subjects.update('no-such-subject', { name: 'x' })).toBeUndefined();
    });

    it('pages by name then id with a cursor', async () => {
      const t = tag();
      for (const n of ['c', 'a', 'b', 'a', 'b', 'a']) await get().subjects.create({ name: `${t}-${n}` });
      const all = await get().subjects.list({ search: t, limit: 100 });
      expect(all).toHaveLength(6);
      const sorted = [...all].sort((x, y) => byteOrder(x.name, y.name) || byteOrder(x.id, y.id));
      expect(all.map((s) => s.id)).toEqual(sorted.map((s) => s.id));
      const pages: string[] = [];
      let after: { name: string; id: string } | undefined;
      for (;;) {
        const page = await get().subjects.list({ search: t, limit: 4, ...(after ? { after } : {}) });
        pages.push(...page.map((s) => s.id));
        if (page.length < 4) break;
        after = { name: page.at(-1)!.name, id: page.at(-1)!.id };
      }
      expect(pages).toEqual(sorted.map((s) => s.id));
      expect(await get().subjects.list({ search: t, limit: 2, after: { name: `${t}-b`, id: '' } })).toEqual(sorted.filter((s) => s.name === `${t}-b`));
    });

    it('searches names as literal text, ASCII case-insensitively', async () => {
      const t = tag();
      const pct = await get().subjects.create({ name: `${t} 50% off` });
      const under = await get().subjects.create({ name: `${t} under_score` });
      await get().subjects.create({ name: `${t} 50x off` });
      await get().subjects.create({ name: `${t} underXscore` });
      const back = await get().subjects.create({ name: `${t} back\\slash` });
      const ids = async (search: string): Promise<string[]> => (await get().subjects.list({ search, limit: 50 })).map((s) => s.id);
      expect(await ids(`${t} 50%`)).toEqual([pct.id]);
      expect(await ids(`${t} under_`)).toEqual([under.id]);
      expect(await ids(`${t} back\\`)).toEqual([back.id]);
      expect(await ids(`${t} UNDER_SCORE`.toUpperCase())).toEqual([under.id]);
      expect(await ids(`${t}%`)).toEqual([]);
    });

    it('lists subjects whose delete-after date has passed', async () => {
      const past = await get().subjects.create({ name: `past ${tag()}`, deleteAfter: '2020-01-01T00:00:00.000Z' });
      const future = await get().subjects.create({ name: `future ${tag()}`, deleteAfter: '2999-01-01T00:00:00.000Z' });
      const never = await get().subjects.create({ name: `never ${tag()}` });
      const expired = await get().subjects.expired(new Date());
      expect(expired).toContain(past.id);
      expect(expired).not.toContain(future.id);
      expect(expired).not.toContain(never.id);
      expect(await get().subjects.expired(new Date('2020-01-01T00:00:00.000Z'))).toContain(past.id);
      expect(await get().subjects.expired(new Date('2019-12-31T23:59:59.999Z'))).not.toContain(past.id);
    });

    it('adds templates once per (subject, model, source image)', async () => {
      const s = await get().subjects.create({ name: `tpl ${tag()}` });
      const model = `emb-${tag()}`;
      const before = await get().subjects.count();
      const source = sha();
      const v = vector(1, 512);
      const a = await get().subjects.addTemplate({ subjectId: s.id, modelId: model, vector: v, quality: 0.75, sourceSha256: source });
      expect(a.added).toBe(true);
      expect(await get().subjects.addTemplate({ subjectId: s.id, modelId: model, vector: vector(2, 512), quality: 0.1, sourceSha256: source })).toEqual({ id: a.id, added: false });
      const otherModel = await get().subjects.addTemplate({ subjectId: s.id, modelId: `${model}-b`, vector: v, quality: 0.5, sourceSha256: source });
      const otherSource = await get().subjects.addTemplate({ subjectId: s.id, modelId: model, vector: vector(3, 512), quality: 0.5, sourceSha256: sha() });
      expect(otherModel.added && otherSource.added).toBe(true);
      expect(new Set([a.id, otherModel.id, otherSource.id]).size).toBe(3);

      expect(await get().subjects.count()).toEqual({ subjects: before.subjects, templates: before.templates + 3 });
      expect((await get().subjects.get(s.id))!.templates).toBe(3);
      const rows = await get().subjects.templates([s.id]);
      expect(rows.map((r) => r.id).sort()).toEqual([a.id, otherModel.id, otherSource.id].sort());
      const first = rows.find((r) => r.id === a.id)!;
      expect(first).toMatchObject({ subjectId: s.id, modelId: model, quality: 0.75 });
      expect(first.vector).toBeInstanceOf(Float32Array);
      expect(Array.from(first.vector)).toEqual(Array.from(v));
      expect(await get().subjects.templates([])).toEqual([]);
    });

    it('answers templates and names for more than 1000 ids', async () => {
      const t = tag();
      const ids: string[] = [];
      for (let i = 0; i < 1100; i++) ids.push((await get().subjects.create({ name: `${t}-${i}` })).id);
      const withTemplates = [ids[0]!, ids[600]!, ids[1099]!];
      for (const [i, id] of withTemplates.entries()) await get().subjects.addTemplate({ subjectId: id, modelId: `bulk-${t}`, vector: vector(i), quality: 1, sourceSha256: sha() });
      const names = await get().subjects.names([...ids, 'no-such-subject']);
      expect(names.size).toBe(1100);
      expect(names.get(ids[1050]!)).toBe(`${t}-1050`);
      expect(names.has('no-such-subject')).toBe(false);
      const templates = await get().subjects.templates(ids);
      expect(templates.map((r) => r.subjectId).sort()).toEqual([...withTemplates].sort());
      expect(await get().subjects.names([])).toEqual(new Map());
    });

    it('tells the embedders of templates and their source images', async () => {
      const t = tag();
      const s1 = await get().subjects.create({ name: `src ${t}` });
      const s2 = await get().subjects.create({ name: `src ${t}` });
      const [m1, m2] = [`m1-${t}`, `m2-${t}`];
      const [h1, h2, h3] = [sha(), sha(), sha()];
      await get().subjects.addTemplate({ subjectId: s1.id, modelId: m1, vector: vector(1), quality: 1, sourceSha256: h1 });
      await get().subjects.addTemplate({ subjectId: s2.id, modelId: m1, vector: vector(2), quality: 1, sourceSha256: h2 });
      await get().subjects.addTemplate({ subjectId: s1.id, modelId: m1, vector: vector(3), quality: 1, sourceSha256: h3 });
      await get().subjects.addTemplate({ subjectId: s2.id, modelId: m2, vector: vector(4), quality: 1, sourceSha256: h1 });
      const except = await get().subjects.templateModelsExcept(m1);
      expect(except).toContain(m2);
      expect(except).not.toContain(m1);
      expect(except).toEqual([...except].sort(byteOrder));
      const expected = [
        { subjectId: s1.id, sourceSha256: h1 },
        { subjectId: s1.id, sourceSha256: h3 },
        { subjectId: s2.id, sourceSha256: h2 },
      ].sort((a, b) => byteOrder(a.subjectId, b.subjectId) || byteOrder(a.sourceSha256, b.sourceSha256));
      expect(await get().subjects.templateSources(m1)).toEqual(expected);
      expect(await get().subjects.templateSources(`none-${t}`)).toEqual([]);
    });
  });
}

function galleriesCases(get: Get): void {
  describe('galleries', () => {
    it('has the default gallery, first in the list and never deleted', async () => {
      const d = await get().galleries.get(DEFAULT_GALLERY);
      expect(d).toMatchObject({ id: DEFAULT_GALLERY, name: 'default', isDefault: true });
      expectIso(d!.createdAt);
      expect((await get().galleries.list())[0]!.id).toBe(DEFAULT_GALLERY);
      expect(await get().galleries.delete(DEFAULT_GALLERY)).toBe(false);
      expect(await get().galleries.get(DEFAULT_GALLERY)).toBeDefined();
    });

    it('creates, lists by name and deletes galleries', async () => {
      const t = tag();
      const b = await get().galleries.create(`${t}-b`);
      const a = await get().galleries.create(`${t}-a`);
      expect(b).toMatchObject({ name: `${t}-b`, isDefault: false, headSeq: 0 });
      expectIso(b.createdAt);
      expect(await get().galleries.get(b.id)).toEqual(b);
      expect(await get().galleries.get('no-such-gallery')).toBeUndefined();
      await expect(get().galleries.create(`${t}-a`)).rejects.toThrow();
      const list = await get().galleries.list();
      const names = list.filter((g) => !g.isDefault).map((g) => g.name);
      expect(names).toEqual([...names].sort(byteOrder));
      expect(list.map((g) => g.id)).toEqual(expect.arrayContaining([a.id, b.id]));
      expect(await get().galleries.delete(a.id)).toBe(true);
      expect(await get().galleries.delete(a.id)).toBe(false);
      expect(await get().galleries.get(a.id)).toBeUndefined();
    });

    it('changes membership and logs it in one step', async () => {
      const g = await get().galleries.create(`members ${tag()}`);
      const s1 = await get().subjects.create({ name: 'm1' });
      const s2 = await get().subjects.create({ name: 'm2' });
      expect(await get().galleries.addMember(g.id, s1.id)).toBe(1);
      expect(await get().galleries.addMember(g.id, s1.id)).toBeNull();
      expect(await get().galleries.addMember(g.id, s2.id)).toBe(2);
      expect(await get().galleries.members(g.id)).toEqual([s1.id, s2.id].sort(byteOrder));
      expect(await get().galleries.galleriesOf(s1.id)).toEqual([DEFAULT_GALLERY, g.id]);
      expect(await get().galleries.removeMember(g.id, s1.id)).toBe(3);
      expect(await get().galleries.removeMember(g.id, s1.id)).toBeNull();
      expect(await get().galleries.members(g.id)).toEqual([s2.id]);
      expect(await get().galleries.galleriesOf(s1.id)).toEqual([DEFAULT_GALLERY]);
      expect(await get().galleries.head(g.id)).toBe(3);
      expect((await get().galleries.get(g.id))!.headSeq).toBe(3);
      expect(await get().galleries.since(g.id, 0, 100)).toEqual([
        { seq: 1, op: 'upsert', subjectId: s1.id },
        { seq: 2, op: 'upsert', subjectId: s2.id },
        { seq: 3, op: 'delete', subjectId: s1.id },
      ]);
      expect(await get().galleries.since(g.id, 1, 1)).toEqual([{ seq: 2, op: 'upsert', subjectId: s2.id }]);
      expect(await get().galleries.since(g.id, 3, 100)).toEqual([]);
      expect(await get().galleries.head('no-such-gallery')).toBe(0);
    });

    it('lists every subject as a member of the default gallery and keeps each gallery in order', async () => {
      const s = await get().subjects.create({ name: `everyone ${tag()}` });
      const g1 = await get().galleries.create(`of-1 ${tag()}`);
      const g2 = await get().galleries.create(`of-2 ${tag()}`);
      await get().galleries.addMember(g2.id, s.id);
      await get().galleries.addMember(g1.id, s.id);
      expect(await get().galleries.galleriesOf(s.id)).toEqual([DEFAULT_GALLERY, ...[g1.id, g2.id].sort(byteOrder)]);
      const all = await get().galleries.members(DEFAULT_GALLERY);
      expect(all).toContain(s.id);
      expect(all).toEqual([...all].sort(byteOrder));
      expect(all).toHaveLength((await get().subjects.count()).subjects);
    });

    it('appends to several galleries at once, and to none when one is missing', async () => {
      const g1 = await get().galleries.create(`app-1 ${tag()}`);
      const g2 = await get().galleries.create(`app-2 ${tag()}`);
      const s = await get().subjects.create({ name: 'appended' });
      const h0 = await get().galleries.head(DEFAULT_GALLERY);
      expect(await get().galleries.append([g2.id, DEFAULT_GALLERY, g1.id], 'upsert', s.id)).toEqual([
        { galleryId: g2.id, seq: 1 },
        { galleryId: DEFAULT_GALLERY, seq: expect.any(Number) as number },
        { galleryId: g1.id, seq: 1 },
      ]);
      expect(await get().galleries.head(DEFAULT_GALLERY)).toBeGreaterThan(h0);
      expect(await get().galleries.since(g1.id, 0, 10)).toEqual([{ seq: 1, op: 'upsert', subjectId: s.id }]);
      await expect(get().galleries.append([g1.id, 'no-such-gallery'], 'delete', s.id)).rejects.toThrow();
      expect(await get().galleries.head(g1.id)).toBe(1);
      expect(await get().galleries.since(g1.id, 1, 10)).toEqual([]);
    });

    it('erases a subject with its templates, crops and memberships, logging a delete everywhere it was', async () => {
      const s = await get().subjects.create({ name: `erase ${tag()}` });
      const keep = await get().subjects.create({ name: `keep ${tag()}` });
      const g = await get().galleries.create(`erase ${tag()}`);
      await get().galleries.addMember(g.id, s.id);
      await get().galleries.addMember(g.id, keep.id);
      const source = sha();
      await get().subjects.addTemplate({ subjectId: s.id, modelId: 'erase-model', vector: vector(9), quality: 1, sourceSha256: source });
      await get().crops.put({ subjectId: s.id, sourceSha256: source, width: 2, height: 1, data: Buffer.from([1, 2, 3, 4, 5, 6]) });
      const defaultHead = await get().galleries.head(DEFAULT_GALLERY);

      const heads = await get().galleries.eraseSubject(s.id);
      expect(heads).toEqual([
        { galleryId: DEFAULT_GALLERY, seq: defaultHead + 1 },
        { galleryId: g.id, seq: 3 },
      ]);
      expect(await get().subjects.get(s.id)).toBeUndefined();
      expect(await get().subjects.templates([s.id])).toEqual([]);
      expect(await get().crops.get(s.id, source)).toBeUndefined();
      expect((await get().crops.sources()).map((c) => c.subjectId)).not.toContain(s.id);
      expect(await get().galleries.galleriesOf(s.id)).toEqual([DEFAULT_GALLERY]);
      expect(await get().galleries.members(g.id)).toEqual([keep.id]);
      expect(await get().galleries.members(DEFAULT_GALLERY)).not.toContain(s.id);
      expect(await get().galleries.since(g.id, 2, 10)).toEqual([{ seq: 3, op: 'delete', subjectId: s.id }]);
      expect(await get().galleries.since(DEFAULT_GALLERY, defaultHead, 10)).toEqual([{ seq: defaultHead + 1, op: 'delete', subjectId: s.id }]);
      expect(await get().galleries.eraseSubject(s.id)).toBeUndefined();
      expect(await get().galleries.head(DEFAULT_GALLERY)).toBe(defaultHead + 1);
    });

    it('gives 50 concurrent appends to one gallery 50 distinct, consecutive sequences', async () => {
      const g = await get().galleries.create(`race ${tag()}`);
      const s = await get().subjects.create({ name: 'race' });
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => get().galleries.append([g.id], i % 2 ? 'delete' : 'upsert', s.id)));
      const seqs = results.map((r) => r[0]!.seq).sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(await get().galleries.head(g.id)).toBe(50);
      expect((await get().galleries.since(g.id, 0, 100)).map((e) => e.seq)).toEqual(seqs);
    });

    it('compacts every gallery log to the entries fewer than `keep` below its head', async () => {
      const g1 = await get().galleries.create(`compact ${tag()}`);
      const g2 = await get().galleries.create(`compact ${tag()}`);
      const s = await get().subjects.create({ name: 'compact' });
      for (let i = 0; i < 12; i++) await get().galleries.append([g1.id], 'upsert', s.id);
      for (let i = 0; i < 3; i++) await get().galleries.append([g2.id], 'upsert', s.id);
      const otherBefore = await get().galleries.since(DEFAULT_GALLERY, 0, 1_000_000);
      const deleted = await get().galleries.compactLogs(5);
      expect(deleted).toBeGreaterThanOrEqual(7); // 7 of g1 (seq 1..7), none of g2, and whatever other galleries held
      expect((await get().galleries.since(g1.id, 0, 100)).map((e) => e.seq)).toEqual([8, 9, 10, 11, 12]);
      expect((await get().galleries.since(g2.id, 0, 100)).map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(await get().galleries.head(g1.id)).toBe(12);
      const defaultHead = await get().galleries.head(DEFAULT_GALLERY);
      expect((await get().galleries.since(DEFAULT_GALLERY, 0, 1_000_000)).map((e) => e.seq)).toEqual(otherBefore.map((e) => e.seq).filter((q) => q > defaultHead - 5));
      expect(await get().galleries.compactLogs(5)).toBe(0);
      // Appends go on from the head, not from what is left in the log.
      expect(await get().galleries.append([g1.id], 'delete', s.id)).toEqual([{ galleryId: g1.id, seq: 13 }]);
    });
  });
}

function devicesCases(get: Get): void {
  describe('devices', () => {
    it('creates a device whose secret verifies, with a Mosquitto hash of it', async () => {
      const { device, secret } = await get().devices.create(`cam ${tag()}`);
      expect(device.id).toMatch(/^dev-[0-9a-f-]{36}$/);
      expect(device).toMatchObject({ revokedAt: null, online: false, lastSeen: null, agentVersion: null, models: null, outboxDepth: null });
      expectIso(device.createdAt);
      expect(await get().devices.get(device.id)).toEqual(device);
      expect(await get().devices.get('dev-nope')).toBeUndefined();
      expect(await get().devices.verify(device.id, secret)).toBe(true);
      expect(await get().devices.verify(device.id, `${secret}x`)).toBe(false);
      expect(await get().devices.verify('dev-nope', secret)).toBe(false);
      const account = (await get().devices.brokerAccounts()).find((a) => a.id === device.id);
      expect(account).toMatchObject({ id: device.id, galleries: [DEFAULT_GALLERY] });
      expect(checkMosquittoPasswordHash(secret, account!.brokerHash!)).toBe(true);
      expect(checkMosquittoPasswordHash(`${secret}x`, account!.brokerHash!)).toBe(false);
    });

    it('lists devices in creation order and renames them', async () => {
      const a = (await get().devices.create('first')).device;
      await sleep(3); // creation order is by time (then id): a tie would make it arbitrary
      const b = (await get().devices.create('second')).device;
      await get().devices.rename(a.id, 'renamed');
      const ids = (await get().devices.list()).map((d) => d.id);
      expect(ids.indexOf(a.id)).toBeLessThan(ids.indexOf(b.id));
      expect((await get().devices.get(a.id))!.name).toBe('renamed');
      const accounts = (await get().devices.brokerAccounts()).map((d) => d.id);
      expect(accounts).toEqual([...accounts].sort(byteOrder));
    });

    it('records presence and status reports with gallery sequences', async () => {
      const { device } = await get().devices.create('status');
      await get().devices.setOnline(device.id, true, '1.2.3');
      const on = (await get().devices.get(device.id))!;
      expect(on).toMatchObject({ online: true, agentVersion: '1.2.3' });
      expectIso(on.lastSeen);
      await get().devices.setOnline(device.id, false);
      expect(await get().devices.get(device.id)).toMatchObject({ online: false, agentVersion: '1.2.3' });

      const models = { detector: 'yunet', embedder: 'arcface' };
      await get().devices.setStatus(device.id, { models, outboxDepth: 7, agentVersion: '1.3.0', galleries: { [DEFAULT_GALLERY]: 4, other: 2 } });
      expect(await get().devices.get(device.id)).toMatchObject({ models, outboxDepth: 7, agentVersion: '1.3.0' });
      expect(await get().devices.seqs(device.id)).toEqual({ [DEFAULT_GALLERY]: 4, other: 2 });
      await get().devices.setStatus(device.id, { models, outboxDepth: 0, agentVersion: '1.3.0', galleries: { other: 9, third: 1 } });
      expect(await get().devices.seqs(device.id)).toEqual({ [DEFAULT_GALLERY]: 4, other: 9, third: 1 });
      await get().devices.setStatus(device.id, { models, outboxDepth: 1, agentVersion: '1.3.1' });
      expect(await get().devices.seqs(device.id)).toEqual({ [DEFAULT_GALLERY]: 4, other: 9, third: 1 });
      expect((await get().devices.get(device.id))!.outboxDepth).toBe(1);
      expect(await get().devices.seqs('dev-nope')).toEqual({});
    });

    it('assigns galleries, the default one when none is assigned', async () => {
      const { device } = await get().devices.create('galleries');
      const g1 = await get().galleries.create(`dg-1 ${tag()}`);
      const g2 = await get().galleries.create(`dg-2 ${tag()}`);
      expect(await get().devices.galleries(device.id)).toEqual([DEFAULT_GALLERY]);
      expect(await get().devices.devicesWithGallery(DEFAULT_GALLERY)).toContain(device.id);
      await get().devices.setGalleries(device.id, [g2.id, g1.id]);
      expect(await get().devices.galleries(device.id)).toEqual([g1.id, g2.id].sort(byteOrder));
      expect(await get().devices.devicesWithGallery(g1.id)).toEqual([device.id]);
      expect(await get().devices.devicesWithGallery(DEFAULT_GALLERY)).not.toContain(device.id);
      expect((await get().devices.brokerAccounts()).find((a) => a.id === device.id)!.galleries).toEqual([g1.id, g2.id].sort(byteOrder));
      await get().devices.setGalleries(device.id, [g2.id]);
      expect(await get().devices.devicesWithGallery(g1.id)).toEqual([]);
      await get().devices.setGalleries(device.id, []);
      expect(await get().devices.galleries(device.id)).toEqual([DEFAULT_GALLERY]);
      expect(await get().devices.devicesWithGallery(DEFAULT_GALLERY)).toContain(device.id);
    });

    it('revokes a device once: it no longer verifies nor holds galleries', async () => {
      const { device, secret } = await get().devices.create('revoked');
      const g = await get().galleries.create(`rv ${tag()}`);
      await get().devices.setGalleries(device.id, [g.id]);
      await get().devices.setOnline(device.id, true);
      expect(await get().devices.revoke(device.id)).toBe(true);
      expect(await get().devices.revoke(device.id)).toBe(false);
      expect(await get().devices.revoke('dev-nope')).toBe(false);
      const r = (await get().devices.get(device.id))!;
      expect(r.online).toBe(false);
      expectIso(r.revokedAt);
      expect(await get().devices.verify(device.id, secret)).toBe(false);
      expect(await get().devices.devicesWithGallery(g.id)).toEqual([]);
      expect((await get().devices.brokerAccounts()).map((a) => a.id)).not.toContain(device.id);
      expect((await get().devices.list()).map((d) => d.id)).toContain(device.id);
    });
  });
}

const BASE = Date.parse('2001-01-01T00:00:00.000Z');

function event(deviceId: string, i: number, over: Partial<EventMessage> = {}): EventMessage {
  return {
    id: `evt-${deviceId}-${String(i).padStart(5, '0')}`,
    deviceId,
    type: 'recognition',
    subjectId: `subj-${i % 3}`,
    subject: `Name ${i % 3}`,
    similarity: 0.5 + i / 1000,
    at: new Date(BASE + Math.floor(i / 2) * 1000).toISOString(),
    modelId: 'arcface',
    ...over,
  };
}

function eventsCases(get: Get): void {
  describe('events', () => {
    // Events of this block are dated 2001, older than any other case's, for the purge at the end.
    const device = `cam-${tag()}`;
    const mine = Array.from({ length: 10 }, (_, i) => event(device, i, i >= 8 ? { type: 'unknown', subjectId: null, subject: null } : {}));

    it('stores each event once, also when a batch repeats it', async () => {
      const before = await get().events.count();
      expect(await get().events.insertMany(mine.slice(0, 6))).toEqual([true, true, true, true, true, true]);
      expect(await get().events.insertMany([mine[5]!, mine[6]!, mine[7]!, mine[7]!, mine[8]!, mine[9]!, mine[0]!])).toEqual([false, true, true, false, true, true, false]);
      expect(await get().events.insertMany([])).toEqual([]);
      expect(await get().events.count()).toBe(before + 10);
    });

    it('returns the stored fields, with the time normalised and the receipt time', async () => {
      const offset = { ...event(device, 50), at: '2001-01-01T03:00:00+02:00' };
      expect(await get().events.insertMany([offset])).toEqual([true]);
      const [row] = await get().events.list({ device, from: '2001-01-01T01:00:00.000Z', to: '2001-01-01T01:00:00.001Z' }, 10);
      expect(row).toMatchObject({ id: offset.id, deviceId: device, type: 'recognition', subjectId: offset.subjectId, subject: offset.subject, similarity: offset.similarity, at: '2001-01-01T01:00:00.000Z' });
      expectIso(row!.receivedAt);
      expect(Object.keys(row!).sort()).toEqual(['at', 'deviceId', 'id', 'receivedAt', 'similarity', 'subject', 'subjectId', 'type']);
    });

    it('filters by device, subject id or name, type and time range', async () => {
      const ids = async (f: Parameters<HubStore['events']['list']>[0]): Promise<string[]> => (await get().events.list({ device, to: '2001-01-01T00:59:00.000Z', ...f }, 100)).map((e) => e.id);
      const newestFirst = (xs: EventMessage[]): string[] => [...xs].sort((a, b) => byteOrder(b.at, a.at) || byteOrder(b.id, a.id)).map((e) => e.id);
      expect(await ids({})).toEqual(newestFirst(mine));
      expect(await ids({ subject: 'subj-1' })).toEqual(newestFirst(mine.filter((e) => e.subjectId === 'subj-1')));
      expect(await ids({ subject: 'Name 2' })).toEqual(newestFirst(mine.filter((e) => e.subject === 'Name 2')));
      expect(await ids({ type: 'unknown' })).toEqual(newestFirst(mine.slice(8)));
      expect(await ids({ from: mine[4]!.at, to: mine[8]!.at })).toEqual(newestFirst(mine.slice(4, 8)));
      expect(await ids({ device: 'cam-none' })).toEqual([]);
    });

    it('pages newest first with an (at, id) cursor through equal times', async () => {
      const seen: string[] = [];
      let after: { at: string; id: string } | undefined;
      for (;;) {
        const page = await get().events.list({ device, to: '2001-01-01T00:59:00.000Z' }, 3, after);
        seen.push(...page.map((e) => e.id));
        if (page.length < 3) break;
        after = { at: page.at(-1)!.at, id: page.at(-1)!.id };
      }
      expect(seen).toEqual((await get().events.list({ device, to: '2001-01-01T00:59:00.000Z' }, 100)).map((e) => e.id));
      expect(new Set(seen).size).toBe(10);
    });

    it('stores batches larger than one statement holds', async () => {
      const bulk = `bulk-${tag()}`;
      const batch = Array.from({ length: 2500 }, (_, i) => event(bulk, i, { at: new Date(Date.parse('2002-06-01T00:00:00.000Z') + i).toISOString() }));
      expect(await get().events.insertMany(batch.slice(0, 1200))).toEqual(Array.from({ length: 1200 }, () => true));
      const result = await get().events.insertMany([...batch, batch[2499]!]);
      expect(result.filter((r) => r)).toHaveLength(1300);
      expect(result.slice(0, 1200).every((r) => !r)).toBe(true);
      expect(result.slice(1200, 2500).every((r) => r)).toBe(true);
      expect(result[2500]).toBe(false);
      expect(await get().events.list({ device: bulk }, 5000)).toHaveLength(2500);
    });

    it('purges events older than a cutoff', async () => {
      const before = await get().events.count();
      expect(await get().events.purgeOlderThan(mine[4]!.at)).toBe(4);
      expect(await get().events.count()).toBe(before - 4);
      expect((await get().events.list({ device }, 100)).map((e) => e.id)).not.toContain(mine[0]!.id);
      expect(await get().events.purgeOlderThan(mine[4]!.at)).toBe(0);
    });
  });
}

export function testManifest(id: string): ModelManifestInput {
  return {
    id,
    kind: 'embedder',
    family: 'arcface',
    licence: 'MIT',
    input: { name: 'input.1', shape: [1, 3, 112, 112], colorOrder: 'RGB', mean: [127.5, 127.5, 127.5], std: [128, 128, 128] },
    embeddingSize: 512,
    threshold: 0.35,
  };
}

export function testModel(id: string): Omit<ModelRow, 'createdAt'> {
  return { id, kind: 'embedder', sha256: sha(), bytes: 166_000_000, manifest: testManifest(id), selfTest: null, keyId: null, signature: null, source: 'upload', path: `/models/${id}.onnx` };
}

const SELF_TEST: SelfTestSpec = { seed: 7, shape: [1, 3, 112, 112], tolerance: 0.999, output: [0.125, -0.5, 1e-7, 3.14159] };

function modelsCases(get: Get): void {
  describe('models', () => {
    it('inserts a model once and reads it back', async () => {
      const m = testModel(`emb-${tag()}`);
      expect(await get().models.insert(m)).toBe(true);
      expect(await get().models.insert({ ...m, sha256: sha() })).toBe(false);
      const row = await get().models.get(m.id);
      expect(row).toEqual({ ...m, createdAt: row!.createdAt });
      expectIso(row!.createdAt);
      expect(await get().models.get('no-such-model')).toBeUndefined();
      await get().models.setSigned(m.id, SELF_TEST, 'key-1', 'c2lnbmF0dXJl');
      expect(await get().models.get(m.id)).toMatchObject({ selfTest: SELF_TEST, keyId: 'key-1', signature: 'c2lnbmF0dXJl' });
    });

    it('lists models by kind then id', async () => {
      const t = tag();
      await get().models.insert(testModel(`z-${t}`));
      await get().models.insert({ ...testModel(`a-${t}`), kind: 'detector', manifest: { ...testManifest(`a-${t}`), kind: 'detector', family: 'yunet' } });
      const list = await get().models.list();
      const keys = list.map((m) => `${m.kind}\u0000${m.id}`);
      expect(keys).toEqual([...keys].sort(byteOrder));
      expect(list.find((m) => m.id === `a-${t}`)!.manifest.family).toBe('yunet');
    });

    it('assigns and unassigns a model of each kind to a device', async () => {
      const { device } = await get().devices.create('models');
      const m1 = testModel(`as1-${tag()}`);
      const m2 = testModel(`as2-${tag()}`);
      await get().models.insert(m1);
      await get().models.insert(m2);
      expect(await get().models.assigned(device.id)).toEqual({});
      await get().models.assign(device.id, 'embedder', m1.id, null);
      expect(await get().models.assigned(device.id)).toEqual({ embedder: { modelId: m1.id, rolloutId: null } });
      await get().models.assign(device.id, 'embedder', m2.id, 'ro-1');
      await get().models.assign(device.id, 'detector', m1.id, null);
      expect(await get().models.assigned(device.id)).toEqual({ embedder: { modelId: m2.id, rolloutId: 'ro-1' }, detector: { modelId: m1.id, rolloutId: null } });
      await get().models.assign(device.id, 'embedder', null, null);
      expect(await get().models.assigned(device.id)).toEqual({ detector: { modelId: m1.id, rolloutId: null } });
    });
  });
}

const GATES: Gates = { maxFailureRate: 0.1, soakSeconds: 30, minHealthyPercent: 90 };

function rolloutsCases(get: Get): void {
  describe('rollouts', () => {
    it('creates a rollout with its devices in order, pending', async () => {
      const m = testModel(`ro-${tag()}`);
      await get().models.insert(m);
      const devices = [
        { deviceId: 'dev-b', wave: 0, previousModelId: 'old' },
        { deviceId: 'dev-a', wave: 1, previousModelId: null },
        { deviceId: 'dev-c', wave: 1, previousModelId: 'old' },
      ];
      const r = await get().rollouts.create({ modelId: m.id, kind: 'embedder', target: { galleries: ['g1', 'g2'] }, waves: [10, 100], gates: GATES, devices });
      expect(r.id).toMatch(/^ro-[0-9a-f-]{36}$/);
      expect(r).toMatchObject({ modelId: m.id, kind: 'embedder', target: { galleries: ['g1', 'g2'] }, waves: [10, 100], gates: GATES, state: 'running', wave: 0, reason: null, waveDoneAt: null });
      expectIso(r.createdAt);
      expect(r.updatedAt).toBe(r.createdAt);
      expect(await get().rollouts.get(r.id)).toEqual(r);
      expect(await get().rollouts.get('ro-nope')).toBeUndefined();
      const rows = await get().rollouts.devices(r.id);
      expect(rows.map(({ updatedAt: _, ...d }) => d)).toEqual(devices.map((d, i) => ({ ...d, position: i, state: 'pending', reason: null })));
      expectIso(rows[0]!.updatedAt);
      const empty = await get().rollouts.create({ modelId: m.id, kind: 'embedder', target: 'all', waves: [100], gates: GATES, devices: [] });
      expect(empty.target).toBe('all');
      expect(await get().rollouts.devices(empty.id)).toEqual([]);
    });

    it('updates a rollout and its devices, and lists the open ones', async () => {
      const m = testModel(`ro2-${tag()}`);
      await get().models.insert(m);
      const make = (): ReturnType<HubStore['rollouts']['create']> =>
        get().rollouts.create({ modelId: m.id, kind: 'embedder', target: { devices: ['dev-x'] }, waves: [100], gates: GATES, devices: [{ deviceId: 'dev-x', wave: 0, previousModelId: null }] });
      const a = await make();
      const b = await make();
      const c = await make();
      await get().rollouts.update(a.id, { state: 'paused', wave: 1, waveDoneAt: '2024-05-01T12:00:00.000Z', reason: 'operator' });
      const pa = (await get().rollouts.get(a.id))!;
      expect(pa).toMatchObject({ state: 'paused', wave: 1, waveDoneAt: '2024-05-01T12:00:00.000Z', reason: 'operator' });
      expect(pa.updatedAt >= a.updatedAt).toBe(true);
      await get().rollouts.update(a.id, { reason: null, waveDoneAt: null });
      expect(await get().rollouts.get(a.id)).toMatchObject({ state: 'paused', wave: 1, waveDoneAt: null, reason: null });
      await get().rollouts.update(b.id, { state: 'completed' });
      await get().rollouts.update(c.id, { state: 'halted', reason: 'failures' });

      const open = (await get().rollouts.open()).map((r) => r.id);
      expect(open).toContain(a.id);
      expect(open).toContain(c.id);
      expect(open).not.toContain(b.id);
      const openTimes = (await get().rollouts.open()).map((r) => r.createdAt);
      expect(openTimes).toEqual([...openTimes].sort());
      const list = await get().rollouts.list();
      expect(list.map((r) => r.id)).toEqual(expect.arrayContaining([a.id, b.id, c.id]));
      const times = list.map((r) => r.createdAt);
      expect(times).toEqual([...times].sort().reverse());

      await get().rollouts.setDevice(a.id, 'dev-x', 'failed', 'self-test mismatch');
      expect(await get().rollouts.devices(a.id)).toMatchObject([{ deviceId: 'dev-x', state: 'failed', reason: 'self-test mismatch' }]);
      await get().rollouts.setDevice(a.id, 'dev-x', 'active');
      expect(await get().rollouts.devices(a.id)).toMatchObject([{ deviceId: 'dev-x', state: 'active', reason: null }]);
      expect(await get().rollouts.devices(b.id)).toMatchObject([{ deviceId: 'dev-x', state: 'pending' }]);
    });
  });
}

function cropsCases(get: Get): void {
  describe('crops', () => {
    it('seals crops and opens them again', async () => {
      const s = await get().subjects.create({ name: `crop ${tag()}` });
      const source = sha();
      const data = randomBytes(112 * 112 * 3);
      const before = await get().crops.count();
      await get().crops.put({ subjectId: s.id, sourceSha256: source, width: 112, height: 112, data });
      const got = await get().crops.get(s.id, source);
      expect(got).toMatchObject({ subjectId: s.id, sourceSha256: source, width: 112, height: 112 });
      expect(Buffer.from(got!.data).equals(data)).toBe(true);
      expect(await get().crops.count()).toBe(before + 1);
      const replaced = randomBytes(12);
      await get().crops.put({ subjectId: s.id, sourceSha256: source, width: 2, height: 2, data: replaced });
      const again = await get().crops.get(s.id, source);
      expect(again).toMatchObject({ width: 2, height: 2 });
      expect(Buffer.from(again!.data).equals(replaced)).toBe(true);
      expect(await get().crops.count()).toBe(before + 1);
      expect(await get().crops.get(s.id, sha())).toBeUndefined();
    });

    it('tells which templates have no crop, and lists the crops', async () => {
      const t = tag();
      const s = await get().subjects.create({ name: `miss ${t}` });
      const [m1, m2] = [`miss1-${t}`, `miss2-${t}`];
      const sources = [sha(), sha(), sha()];
      for (const [i, h] of sources.entries()) await get().subjects.addTemplate({ subjectId: s.id, modelId: i < 2 ? m1 : m2, vector: vector(i), quality: 1, sourceSha256: h });
      await get().crops.put({ subjectId: s.id, sourceSha256: sources[0]!, width: 1, height: 1, data: Buffer.from([1, 2, 3]) });
      expect(await get().crops.missingFor([m1])).toEqual({ templates: 2, missing: 1 });
      expect(await get().crops.missingFor([m1, m2])).toEqual({ templates: 3, missing: 2 });
      expect(await get().crops.missingFor([`none-${t}`])).toEqual({ templates: 0, missing: 0 });
      expect(await get().crops.missingFor([])).toEqual({ templates: 0, missing: 0 });
      const listed = await get().crops.sources();
      expect(listed).toContainEqual({ subjectId: s.id, sourceSha256: sources[0]! });
      expect(listed.filter((c) => c.subjectId === s.id)).toHaveLength(1);
      const subjects = listed.map((c) => c.subjectId);
      expect(subjects).toEqual([...subjects].sort(byteOrder));
    });
  });
}

function leasesCases(get: Get, open: () => Promise<HubStore>): void {
  describe('leases', () => {
    it('gives a lease to one holder at a time and lets the holder renew it', async () => {
      const name = `lease-${tag()}`;
      expect(await get().leases.holder(name)).toBeUndefined();
      expect(await get().leases.acquire(name, 'a', 60_000)).toBe(true);
      expect(await get().leases.acquire(name, 'b', 60_000)).toBe(false);
      const first = (await get().leases.holder(name))!;
      expect(first.holder).toBe('a');
      expectIso(first.expiresAt);
      expect(Date.parse(first.expiresAt)).toBeGreaterThan(Date.now() + 50_000);
      expect(await get().leases.acquire(name, 'a', 120_000)).toBe(true);
      const renewed = (await get().leases.holder(name))!;
      expect(renewed.holder).toBe('a');
      expect(Date.parse(renewed.expiresAt)).toBeGreaterThan(Date.parse(first.expiresAt));
    });

    it('settles a race between holders on one winner', async () => {
      const name = `race-${tag()}`;
      const holders = Array.from({ length: 10 }, (_, i) => `h${i}`);
      const won = await Promise.all(holders.map((h) => get().leases.acquire(name, h, 60_000)));
      expect(won.filter((w) => w)).toHaveLength(1);
      expect((await get().leases.holder(name))!.holder).toBe(holders[won.indexOf(true)]);
    });

    it('lets another holder take an expired lease', async () => {
      const name = `expiry-${tag()}`;
      expect(await get().leases.acquire(name, 'a', 40)).toBe(true);
      expect(await get().leases.acquire(name, 'b', 60_000)).toBe(false);
      await sleep(150);
      expect(await get().leases.acquire(name, 'b', 60_000)).toBe(true);
      expect((await get().leases.holder(name))!.holder).toBe('b');
      expect(await get().leases.acquire(name, 'a', 60_000)).toBe(false);
    });

    it('releases only for its holder', async () => {
      const name = `release-${tag()}`;
      await get().leases.acquire(name, 'a', 60_000);
      await get().leases.release(name, 'b');
      expect((await get().leases.holder(name))!.holder).toBe('a');
      await get().leases.release(name, 'a');
      expect(await get().leases.holder(name)).toBeUndefined();
      expect(await get().leases.acquire(name, 'b', 60_000)).toBe(true);
    });

    it('shares data and leases with a second store on the same database (another replica)', async () => {
      const other = await open();
      try {
        const s = await get().subjects.create({ name: `shared ${tag()}` });
        expect(await other.subjects.get(s.id)).toEqual(s);
        const name = `replica-${tag()}`;
        expect(await get().leases.acquire(name, 'replica-1', 60_000)).toBe(true);
        expect(await other.leases.acquire(name, 'replica-2', 60_000)).toBe(false);
        await get().leases.release(name, 'replica-1');
        expect(await other.leases.acquire(name, 'replica-2', 60_000)).toBe(true);
      } finally {
        await other.close();
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL for the integration tests

/** The server the PostgreSQL tests use. */
export const TEST_PG_URL = process.env.FACEFLEET_TEST_PG_URL ?? 'postgres://127.0.0.1:5432/test';

/** A schema name of its own for one test run (dropped after with PgKit.dropSchema). */
export const testSchema = (): string => `ff_test_${randomBytes(6).toString('hex')}`;

/** What a PostgreSQL suite gets: the server, the loaded store module, and schema clean-up. */
export interface PgKit {
  url: string;
  postgres: typeof Postgres;
  dropSchema: (schema: string) => Promise<void>;
}

/**
 * pg's CommonJS code does `require('pg-pool')`. When Node runs with the "import" condition (as
 * vitest passes its ssr.resolve.conditions to Node) that require resolves to pg-pool's ES module
 * wrapper and pg fails as it loads, with an unhandled rejection no try/catch stops. Told apart
 * up front by resolving pg-pool the way pg does.
 */
function pgUnloadable(): string | undefined {
  const fromPg = createRequire(createRequire(import.meta.url).resolve('pg'));
  const pool = fromPg.resolve('pg-pool');
  if (!pool.endsWith('.mjs')) return undefined;
  return 'cannot load the PostgreSQL client: Node runs with the "import" condition, so pg\'s require(\'pg-pool\') gets an ES module; keep "import" and "module" out of ssr.resolve.conditions in vitest.config.ts';
}

/** Loads the client and checks the server; the kit, or why PostgreSQL tests cannot run here (end-to-end tests use it too). */
export async function pgKit(): Promise<PgKit | string> {
  const broken = pgUnloadable();
  if (broken !== undefined) return broken;
  let postgres: typeof Postgres;
  try {
    postgres = await import('./postgres.js');
  } catch (err) {
    return `cannot load the PostgreSQL client (pg): ${err instanceof Error ? err.message : String(err)}`;
  }
  const { default: pg } = await import('pg');
  const withClient = async <T>(fn: (c: InstanceType<typeof pg.Client>) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ ...postgres.pgPoolConfig(TEST_PG_URL), connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  try {
    await withClient((c) => c.query('SELECT 1'));
  } catch (err) {
    return `cannot reach PostgreSQL at ${postgres.maskDatabaseUrl(TEST_PG_URL)}: ${postgres.reasonOf(err)} (set FACEFLEET_TEST_PG_URL to a PostgreSQL the tests may create schemas in)`;
  }
  return {
    url: TEST_PG_URL,
    postgres,
    dropSchema: async (schema) => {
      await withClient((c) => c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`));
    },
  };
}

/**
 * Defines PostgreSQL suites when the test server answers. When it does not, CI fails (a suite
 * skipped there would pass unseen) and a developer's run skips them, saying why in one line.
 * The client is loaded here, not imported by the spec, so the SQLite suites beside these run
 * even where pg cannot load.
 */
export async function describePostgres(title: string, define: (kit: PgKit) => void): Promise<void> {
  const kit = await pgKit();
  if (typeof kit !== 'string') {
    define(kit);
    return;
  }
  if (process.env.CI) {
    describe(title, () =>
      it('reaches the test PostgreSQL (required in CI)', () => {
        throw new Error(kit);
      }),
    );
    return;
  }
  console.log(`skipping ${title}: ${kit}`);
  // Skipped on purpose, outside CI only: no PostgreSQL answers here (the reason is printed above).
  describe.skip(title, () => it('needs PostgreSQL', () => undefined));
}
