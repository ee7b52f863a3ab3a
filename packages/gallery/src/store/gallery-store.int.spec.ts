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

  it('says clearly when a gallery to read does not exist or is not a database', () => {
    expect(() => GalleryStore.open(join(dir, 'missing.db'), { mustExist: true })).toThrow(/does not exist/);
    const bad = join(dir, 'bad.db');
    writeFileSync(bad, 'this is not sqlite, just text that is long enough to be a header...........');
    expect(() => GalleryStore.open(bad)).toThrow(/cannot open gallery .*bad\.db/);
  });
});
