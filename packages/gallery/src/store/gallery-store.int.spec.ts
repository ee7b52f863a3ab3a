import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GalleryStore } from './gallery-store.js';

const vec = (...v: number[]): Float32Array => {
  const n = Math.hypot(...v);
  return Float32Array.from(v.map((x) => x / n));
};

describe('GalleryStore (real SQLite file)', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gallery-'));
    path = join(dir, 'g.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('searches a large gallery through the sketch index and finds the planted match with its exact similarity', () => {
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    const unit = (): Float32Array => vec(...Array.from({ length: 64 }, rand));
    const g = GalleryStore.open(path, { exactSearchUpTo: 1000 });
    const query = unit();
    const noise = unit();
    const planted = Float32Array.from(query, (q, i) => 0.6 * q + 0.8 * noise[i]!);
    g.addTemplate(g.ensureSubject('planted').id, { modelId: 'm1', vector: vec(...planted) });
    for (let i = 0; i < 6000; i++) g.addTemplate(g.ensureSubject(`s${i}`).id, { modelId: 'm1', vector: unit() });
    g.close();
    const again = GalleryStore.open(path, { exactSearchUpTo: 1000 });
    const [top] = again.search('m1', query, 1);
    expect(again.subjectName(top!.subjectId)).toBe('planted');
    let dot = 0;
    const p = vec(...planted);
    for (let i = 0; i < 64; i++) dot += p[i]! * query[i]!;
    expect(top!.similarity).toBeCloseTo(dot, 5);
  });

  it('persists subjects and templates across reopen and searches them', () => {
    const g = GalleryStore.open(path);
    const ann = g.ensureSubject('Ann');
    const bob = g.ensureSubject('Bob');
    g.addTemplate(ann.id, { modelId: 'm1', vector: vec(1, 0, 0), sourceSha256: 'x' });
    g.addTemplate(bob.id, { modelId: 'm1', vector: vec(0, 1, 0) });
    g.close();
    const again = GalleryStore.open(path, { mustExist: true });
    expect(again.listSubjects().map((s) => [s.name, s.templates])).toEqual([['Ann', 1], ['Bob', 1]]);
    const hits = again.search('m1', vec(0.9, 0.1, 0), 2);
    expect(hits[0]!.subjectId).toBe(ann.id);
    expect(hits[0]!.similarity).toBeCloseTo(0.9 / Math.hypot(0.9, 0.1), 5);
    again.close();
  });

  it('adds no duplicate template when the same image is enrolled again', () => {
    const g = GalleryStore.open(path);
    const s = g.ensureSubject('Ann');
    expect(g.addTemplate(s.id, { modelId: 'm1', vector: vec(1, 0), sourceSha256: 'abc' }).added).toBe(true);
    expect(g.addTemplate(s.id, { modelId: 'm1', vector: vec(1, 0), sourceSha256: 'abc' }).added).toBe(false);
    expect(g.subjectByName('Ann')!.templates).toBe(1);
    g.close();
  });

  it('refuses templates and queries of another model with a clear error', () => {
    const g = GalleryStore.open(path);
    const s = g.ensureSubject('Ann');
    g.addTemplate(s.id, { modelId: 'model-a', vector: vec(1, 0) });
    expect(() => g.addTemplate(s.id, { modelId: 'model-b', vector: vec(1, 0) })).toThrow(/holds templates of model model-a, not model-b/);
    expect(() => g.search('model-b', vec(1, 0))).toThrow(expect.objectContaining({ code: 'modelMismatch' }));
    g.close();
  });

  it('forgets a subject completely, including from the live index', () => {
    const g = GalleryStore.open(path);
    const s = g.ensureSubject('Ann');
    g.addTemplate(s.id, { modelId: 'm1', vector: vec(1, 0) });
    expect(g.search('m1', vec(1, 0), 1)).toHaveLength(1);
    expect(g.forget('Ann')).toBe(1);
    expect(g.search('m1', vec(1, 0), 1)).toHaveLength(0);
    expect(g.listSubjects()).toHaveLength(0);
    expect(() => g.forget('Ann')).toThrow(/no subject named "Ann"/);
    g.close();
  });

  it('applies hub changes in one go: upserts, deletes, snapshots, every model\'s templates kept, local seeds replaced', () => {
    const g = GalleryStore.open(path);
    const seed = g.ensureSubject('Local seed');
    g.addTemplate(seed.id, { modelId: 'm1', vector: vec(0, 0, 1) });
    expect(g.managed).toBe(false);
    const r1 = g.applySync('gal', {
      snapshot: true,
      toSeq: 2,
      changes: [
        { op: 'upsert', subjectId: 'hub-ann', name: 'Ann', templates: [{ id: 't1', modelId: 'm1', vector: vec(1, 0, 0) }, { id: 't2', modelId: 'other', vector: vec(1, 0) }] },
        { op: 'upsert', subjectId: 'hub-bob', name: 'Bob', templates: [{ id: 't3', modelId: 'm1', vector: vec(0, 1, 0) }] },
      ],
    });
    expect(r1).toEqual({ upserts: 2, deletes: 0, skippedTemplates: 0 });
    expect(g.managed).toBe(true);
    expect(g.listSubjects().map((s) => [s.name, s.templates])).toEqual([['Ann', 2], ['Bob', 1]]); // the local seed is gone
    expect(g.modelIds()).toEqual(['m1', 'other']);
    expect(g.sequences()).toEqual({ gal: 2 });
    // Each model is searched among its own templates only (a 2-d and a 3-d model side by side).
    expect(g.search('m1', vec(1, 0, 0), 5).map((h) => h.subjectId)).toEqual(['hub-ann', 'hub-bob']);
    expect(g.search('other', vec(1, 0), 5).map((h) => [h.templateId, h.subjectId])).toEqual([['t2', 'hub-ann']]);
    expect(g.search('unknown-model', vec(1, 0), 5)).toEqual([]);
    // Bob has no template of `other`: an embedder switch to it would stop recognising him.
    expect(g.subjectsWithoutModel('other')).toEqual(['hub-bob']);
    expect(g.subjectsWithoutModel('m1')).toEqual([]);
    g.applySync('gal', { snapshot: false, toSeq: 3, changes: [{ op: 'delete', subjectId: 'hub-ann' }] });
    expect(g.listSubjects().map((s) => s.name)).toEqual(['Bob']);
    expect(g.search('m1', vec(1, 0, 0), 5).map((h) => h.subjectId)).toEqual(['hub-bob']);
    expect(g.search('other', vec(1, 0), 5)).toEqual([]);
    g.close();
    // Managed survives a reopen; asked for `only` one model, the others are skipped and counted.
    const again = GalleryStore.open(path);
    expect(again.managed).toBe(true);
    const r2 = again.applySync('gal', { snapshot: false, toSeq: 4, changes: [{ op: 'upsert', subjectId: 'hub-cy', name: 'Cy', templates: [{ id: 't4', modelId: 'm1', vector: vec(0, 0, 1) }, { id: 't5', modelId: 'other', vector: vec(0, 1) }] }] }, 'm1');
    expect(r2).toEqual({ upserts: 1, deletes: 0, skippedTemplates: 1 });
    again.dropGallery('gal');
    expect(again.listSubjects()).toEqual([]);
    expect(again.sequences()).toEqual({});
    again.close();
  });

  it('stages a snapshot that arrives in parts and applies it whole with the last part, resumable after a reopen', () => {
    const file = join(dir, 'parts.db');
    let g = GalleryStore.open(file);
    g.applySync('gal', { snapshot: true, toSeq: 1, changes: [{ op: 'upsert', subjectId: 'old', name: 'Old', templates: [{ id: 't0', modelId: 'm1', vector: vec(0, 0, 1) }] }] });
    const up = (id: string, v: Float32Array, modelId = 'm1') => ({ op: 'upsert' as const, subjectId: id, name: id.toUpperCase(), templates: [{ id: `t-${id}`, modelId, vector: v }] });
    expect(g.stageSnapshotPart('gal', { toSeq: 9, index: 0, count: 3, changes: [up('a', vec(1, 0, 0))] })).toEqual({ state: 'staged', next: 1, skippedTemplates: 0 });
    // Nothing changes until the last part: the old gallery still answers.
    expect(g.listSubjects().map((s) => s.name)).toEqual(['Old']);
    expect(g.sequences()).toEqual({ gal: 1 });
    expect(g.snapshotProgress()).toEqual({ gal: { toSeq: 9, part: 1 } });
    // A gap or another snapshot's part is refused; a part already staged is a duplicate.
    expect(g.stageSnapshotPart('gal', { toSeq: 9, index: 2, count: 3, changes: [] }).state).toBe('restart');
    expect(g.stageSnapshotPart('gal', { toSeq: 8, index: 1, count: 3, changes: [] }).state).toBe('restart');
    g.close();
    g = GalleryStore.open(file); // a restart between parts
    expect(g.snapshotProgress()).toEqual({ gal: { toSeq: 9, part: 1 } });
    // Templates of another model are staged too (an embedder rollout sends both models).
    expect(g.stageSnapshotPart('gal', { toSeq: 9, index: 1, count: 3, changes: [up('b', vec(0, 1, 0)), up('x', vec(0, 1), 'other')] })).toEqual({ state: 'staged', next: 2, skippedTemplates: 0 });
    expect(g.stageSnapshotPart('gal', { toSeq: 9, index: 1, count: 3, changes: [] })).toEqual({ state: 'duplicate' });
    const done = g.stageSnapshotPart('gal', { toSeq: 9, index: 2, count: 3, changes: [up('c', vec(1, 1, 0))] });
    expect(done).toEqual({ state: 'applied', result: { upserts: 4, deletes: 0, skippedTemplates: 0 } });
    expect(g.listSubjects().map((s) => [s.name, s.templates])).toEqual([['A', 1], ['B', 1], ['C', 1], ['X', 1]]);
    expect(g.sequences()).toEqual({ gal: 9 });
    expect(g.snapshotProgress()).toEqual({});
    expect(g.search('m1', vec(0, 1, 0), 1)[0]!.subjectId).toBe('b');
    expect(g.search('other', vec(0, 1), 5).map((h) => h.subjectId)).toEqual(['x']);
    // A part 0 of a newer snapshot starts over; a plain change from the hub drops the staging.
    g.stageSnapshotPart('gal', { toSeq: 12, index: 0, count: 2, changes: [up('d', vec(1, 0, 0))] });
    g.applySync('gal', { snapshot: false, toSeq: 10, changes: [{ op: 'delete', subjectId: 'a' }] });
    expect(g.snapshotProgress()).toEqual({});
    expect(g.listSubjects().map((s) => s.name)).toEqual(['B', 'C', 'X']);
    g.close();
  });

  it('migrates a gallery made by the first schema without losing templates', async () => {
    const Database = (await import('better-sqlite3')).default;
    const old = new Database(path);
    old.exec(`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE subjects (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
      CREATE TABLE templates (id TEXT PRIMARY KEY, subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE, model_id TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL, source_sha256 TEXT, quality REAL, created_at TEXT NOT NULL);
      INSERT INTO subjects VALUES ('s1', 'Ann', '2026-01-01');
      PRAGMA user_version = 1;`);
    old.prepare("INSERT INTO templates VALUES ('t1', 's1', 'm1', 2, ?, NULL, NULL, '2026-01-01')").run(Buffer.from(vec(1, 0).buffer));
    old.close();
    const g = GalleryStore.open(path);
    expect(g.listSubjects().map((s) => [s.name, s.templates])).toEqual([['Ann', 1]]);
    g.close();
  });

  it('says clearly when a gallery to read does not exist or is not a database', () => {
    expect(() => GalleryStore.open(join(dir, 'missing.db'), { mustExist: true })).toThrow(/does not exist/);
    const bad = join(dir, 'bad.db');
    writeFileSync(bad, 'this is not sqlite, just text that is long enough to be a header...........');
    expect(() => GalleryStore.open(bad)).toThrow(/cannot open gallery .*bad\.db/);
  });
});
