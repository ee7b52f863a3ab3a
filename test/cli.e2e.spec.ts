import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { facefleet, json } from './cli.js';
import { BBT_PRESENT, data, hasData, ROOT } from './helpers.js';

interface Identified {
  faces: { box: Record<string, number>; subject: string | null; similarity: number; candidates: { subject: string; similarity: number }[] }[];
}

const rel = (p: string): string => relative(ROOT, p);

describe('facefleet CLI: usage and exit codes', () => {
  it('prints help and exits 2 without a command, 2 for an unknown command or flag', async () => {
    expect((await facefleet([])).code).toBe(2);
    const unknown = await facefleet(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
    const flag = await facefleet(['detect', 'x.jpg', '--bogus']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--bogus/);
  });

  it('names the file in one stderr line and exits 2 when an image cannot be read', async () => {
    const r = await facefleet(['detect', 'no/such/image.jpg', '--json']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual(['facefleet: no/such/image.jpg: no such file']);
  });

  it('lists the models with their licence and whether they are present', async () => {
    const r = json<{ models: { id: string; kind: string; sha256: string; present: boolean; default: boolean }[] }>(await facefleet(['models', 'list', '--json']));
    const defaults = r.models.filter((m) => m.default);
    expect(defaults.map((m) => m.kind).sort()).toEqual(['detector', 'embedder', 'liveness', 'liveness']);
    expect(defaults.every((m) => m.present && /^[0-9a-f]{64}$/.test(m.sha256))).toBe(true);
  });
});

describe.runIf(hasData('edge_demo') && hasData('faceapi_bbt'))('facefleet CLI on real photos', () => {
  let dir: string;
  let gallery: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'facefleet-cli-'));
    gallery = join(dir, 'gallery.db');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('detect --json reports upright size, boxes, scores, five landmarks and quality', async () => {
    const r = await facefleet(['detect', rel(data('edge_demo', 'group', 'bbt1.jpg')), '--json']);
    expect(r.code).toBe(0);
    const out = json<{ image: { width: number; height: number }; faces: { box: Record<string, number>; score: number; landmarks: number[][]; quality: Record<string, number> }[] }>(r);
    expect(out.image).toEqual({ width: 1366, height: 768 });
    expect(out.faces).toHaveLength(4);
    for (const f of out.faces) {
      expect(Object.keys(f.box).sort()).toEqual(['height', 'width', 'x', 'y']);
      expect(f.landmarks).toHaveLength(5);
      expect(f.score).toBeGreaterThan(0.5);
      expect(f.quality.score).toBeGreaterThan(0);
    }
  });

  it('verify says same person for two photos of Amy and not for Amy and Raj', async () => {
    const id = (p: string, n: number): string => rel(data('faceapi_bbt', 'identities', p, `${p}${n}.png`));
    const same = json<{ similarity: number; match: boolean; threshold: number; model: string }>(await facefleet(['verify', id('amy', 1), id('amy', 3), '--json']));
    expect(same.match).toBe(true);
    expect(same.similarity).toBeGreaterThan(same.threshold);
    expect(typeof same.model).toBe('string');
    const diff = json<{ similarity: number; match: boolean }>(await facefleet(['verify', id('amy', 1), id('raj', 1), '--json']));
    expect(diff.match).toBe(false);
    expect(diff.similarity).toBeLessThan(same.similarity);
  });

  it('verify exits 2 naming the image when one has no face', async () => {
    const r = await facefleet(['verify', rel(data('faceapi_bbt', 'identities', 'amy', 'amy1.png')), rel(data('edge_demo', 'negatives', 'white.png')), '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/white\.png: no face found/);
  });

  it('verify --pairs goes on past a pair without a face and resolves paths against the list file', async () => {
    const listDir = join(dir, 'lists');
    rmSync(listDir, { recursive: true, force: true });
    mkdirSync(listDir);
    copyFileSync(data('faceapi_bbt', 'identities', 'penny', 'penny1.png'), join(listDir, 'p1.png'));
    copyFileSync(data('faceapi_bbt', 'identities', 'penny', 'penny2.png'), join(listDir, 'p2.png'));
    copyFileSync(data('edge_demo', 'negatives', 'white.png'), join(listDir, 'white.png'));
    writeFileSync(join(listDir, 'list.csv'), 'p1.png,p2.png\np1.png,white.png\n');
    const r = await facefleet(['verify', '--pairs', join(listDir, 'list.csv'), '--json']);
    expect(r.code).toBe(0);
    const out = json<{ results: Record<string, unknown>[]; threshold: number; model: string }>(r);
    expect(out.results).toHaveLength(2);
    expect(out.results[0]).toMatchObject({ a: 'p1.png', b: 'p2.png', match: true });
    expect(out.results[1]).toEqual({ a: 'p1.png', b: 'white.png', match: false, error: 'noFace' });
    const missing = await facefleet(['verify', '--pairs', join(listDir, 'nope.csv'), '--json']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.csv/);
  });

  it('enrolls the bbt people, skips a faceless image by name, and adds no duplicate on re-enrolment', async () => {
    const people = data('faceapi_bbt', 'identities');
    for (const person of readdirSync(people)) {
      const files = readdirSync(join(people, person)).map((f) => rel(join(people, person, f)));
      const r = await facefleet(['enroll', '--gallery', gallery, '--subject', person, ...files, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(json<{ enrolled: number }>(r).enrolled).toBe(files.length);
    }
    const again = json<{ enrolled: number; results: { status: string }[]; subject: { templates: number } }>(
      await facefleet(['enroll', '--gallery', gallery, '--subject', 'amy', rel(join(people, 'amy', 'amy1.png')), rel(data('edge_demo', 'negatives', 'white.png')), '--json']),
    );
    expect(again.enrolled).toBe(0);
    expect(again.results.map((r) => r.status)).toEqual(['duplicate', 'noFace']);
    expect(again.subject.templates).toBe(5);
    const subjects = json<{ subjects: { name: string; templates: number }[] }>(await facefleet(['subjects', '--gallery', gallery, '--json']));
    expect(subjects.subjects.map((s) => s.name)).toEqual(['amy', 'bernadette', 'howard', 'leonard', 'penny', 'raj', 'sheldon', 'stuart']);
    expect(subjects.subjects.every((s) => s.templates === 5)).toBe(true);
  });

  it('identify names the people in the bbt photos and nobody else', async () => {
    const expected = BBT_PRESENT;
    let named = 0;
    for (const [file, people] of Object.entries(expected)) {
      const r = await facefleet(['identify', '--gallery', gallery, rel(data('edge_demo', 'group', file)), '--json']);
      expect(r.code).toBe(0);
      const names = json<Identified>(r).faces.map((f) => f.subject).filter((s): s is string => s !== null);
      expect(new Set(names).size, `${file}: a subject named twice`).toBe(names.length);
      for (const n of names) expect(people, `${file}: ${n} is not in this photo`).toContain(n);
      named += names.length;
    }
    expect(named).toBeGreaterThanOrEqual(22); // 23 visible enrolled faces; one is cut by the frame edge
  });

  it('identify names nobody in the photos without people', async () => {
    const negatives = data('edge_demo', 'negatives');
    for (const f of readdirSync(negatives)) {
      const r = await facefleet(['identify', '--gallery', gallery, rel(join(negatives, f)), '--json']);
      expect(r.code).toBe(0);
      expect([f, json<Identified>(r).faces.filter((x) => x.subject !== null)]).toEqual([f, []]);
    }
  });

  it('refuses to match against templates of another embedder', async () => {
    const r = await facefleet(['identify', '--gallery', gallery, '--embedder', 'mobilefacenet-128d-a', rel(data('edge_demo', 'group', 'bbt1.jpg'))]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/holds templates of model .* not mobilefacenet-128d-a/);
  });

  it('forget erases a subject so identify no longer names them', async () => {
    const r = await facefleet(['forget', '--gallery', gallery, '--subject', 'sheldon', '--json']);
    expect(json(r)).toEqual({ subject: 'sheldon', removedTemplates: 5 });
    const after = json<Identified>(await facefleet(['identify', '--gallery', gallery, rel(data('edge_demo', 'group', 'bbt3.jpg')), '--json']));
    expect(after.faces.map((f) => f.subject)).not.toContain('sheldon');
    expect((await facefleet(['forget', '--gallery', gallery, '--subject', 'sheldon'])).code).toBe(2);
  });
});

describe.runIf(hasData('tricky_inputs'))('facefleet detect on tricky inputs', () => {
  // No speed claim here (the bench measures speed); the 20 s process timeout only catches a hang.
  it('processes every decodable file upright and refuses the rest with exit 2 and one line', async () => {
    const dirs = ['sharp_fixtures', 'heic', 'exif_orientation'].map((d) => data('tricky_inputs', d));
    const outcomes: string[] = [];
    for (const d of dirs) {
      for (const f of readdirSync(d)) {
        const r = await facefleet(['detect', rel(join(d, f)), '--json'], { timeoutMs: 20_000 });
        if (r.code === 0) {
          const out = json<{ image: { width: number; height: number } }>(r);
          expect(out.image.width).toBeGreaterThan(0);
          if (f.startsWith('Landscape')) expect([f, out.image.width > out.image.height]).toEqual([f, true]);
        } else {
          expect([f, r.code]).toEqual([f, 2]);
          const lines = r.stderr.trim().split('\n');
          expect([f, lines.length]).toEqual([f, 1]);
          expect(lines[0]).toContain(f);
          outcomes.push(f);
        }
      }
    }
    // The two bombs must be among the refused, refused for their size (from the header, not by decoding).
    expect(outcomes).toEqual(expect.arrayContaining(['giant-image.jpg', '65536-uint32-limit.png']));
  }, 600_000);
});
