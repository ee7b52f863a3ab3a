import { describe, expect, it } from 'vitest';
import { decide, type MatchDecision } from '@facefleet/gallery';
import { Tracker, type TrackerOptions } from './tracker.js';

// Subjects are axes: a face of subject k has its embedding on axis k (plus a little noise).
const face = (k: number, noise = 0.1): Float32Array => {
  const v = new Float32Array(4).fill(noise);
  v[k] = 1;
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
const gallery = (v: Float32Array): MatchDecision =>
  decide(
    [0, 1, 2].map((k) => ({ templateId: `t${k}`, subjectId: `s${k}`, similarity: v[k]! })),
    0.5,
  );
const box = (x: number, size = 50) => ({ x, y: 10, width: size, height: size });
const opts = (o: Partial<TrackerOptions> = {}): TrackerOptions => ({
  iou: 0.3, maxAgeMs: 1000, minHits: 3, bestFaces: 3, threshold: 0.5, cooldownMs: 10_000, unknownEvents: false, stills: false, ...o,
});

/** One frame: associate boxes, embed what the tracker asks for, finish. */
function step(t: Tracker, at: number, faces: { x: number; k: number; q?: number }[]) {
  const ids = t.associate(at, faces.map((f) => box(f.x)));
  faces.forEach((f, i) => {
    if (t.wantsEmbedding(ids[i]!, f.q ?? 0.8)) t.addSample(ids[i]!, face(f.k), f.q ?? 0.8);
  });
  return { ids, events: t.finishFrame(at, gallery) };
}

describe('Tracker', () => {
  it('gives one event for a person walking past, after minHits frames', () => {
    const t = new Tracker(opts());
    const events = [];
    let id: string | undefined;
    for (let i = 0; i < 20; i++) {
      const r = step(t, i * 100, [{ x: 10 + i * 5, k: 1 }]);
      id ??= r.ids[0];
      expect(r.ids[0]).toBe(id); // the same track throughout
      events.push(...r.events.map((e) => ({ frame: i, ...e })));
    }
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ frame: 2, type: 'recognition', subjectId: 's1', samples: 3 });
  });

  it('stops asking for embeddings once a track has its best faces and has spoken', () => {
    const t = new Tracker(opts({ bestFaces: 2, minHits: 10 }));
    const [id] = t.associate(0, [box(10)]);
    t.addSample(id!, face(0), 0.5);
    t.addSample(id!, face(0), 0.6);
    expect(t.wantsEmbedding(id!, 0.4)).toBe(false);
    expect(t.wantsEmbedding(id!, 0.7)).toBe(true);
  });

  it('suppresses a second event for the same subject within the cooldown, not after it', () => {
    const t = new Tracker(opts({ cooldownMs: 5000, maxAgeMs: 500 }));
    const events = [];
    for (let i = 0; i < 5; i++) events.push(...step(t, i * 100, [{ x: 10, k: 0 }]).events);
    // The person leaves (track ends) and comes back two seconds later: same subject, within cooldown.
    step(t, 2000, []);
    for (let i = 0; i < 5; i++) events.push(...step(t, 2100 + i * 100, [{ x: 300, k: 0 }]).events);
    expect(events).toHaveLength(1);
    step(t, 8000, []);
    for (let i = 0; i < 5; i++) events.push(...step(t, 8100 + i * 100, [{ x: 10, k: 0 }]).events);
    expect(events).toHaveLength(2);
  });

  it('never gives two faces of one frame the same subject', () => {
    const t = new Tracker(opts({ minHits: 1 }));
    const ids = t.associate(0, [box(10), box(200)]);
    t.addSample(ids[0]!, face(2, 0.05), 0.9); // a clear match for s2
    const weaker = new Float32Array([0.1, 0.1, 0.8, 0.58]);
    t.addSample(ids[1]!, weaker.map((x) => x / Math.hypot(...weaker)), 0.9); // also above threshold for s2, less so
    const events = t.finishFrame(0, gallery);
    expect(events.map((e) => e.subjectId)).toEqual(['s2']);
    expect(events[0]!.trackId).toBe(ids[0]);
  });

  it('emits unknown events only when enabled, once per track, when the track ends', () => {
    const stranger = (t: Tracker) => {
      const out = [];
      for (let i = 0; i < 5; i++) {
        const ids = t.associate(i * 100, [box(10)]);
        if (t.wantsEmbedding(ids[0]!, 0.8)) t.addSample(ids[0]!, face(3, 0.05), 0.8);
        out.push(...t.finishFrame(i * 100, gallery));
      }
      out.push(...t.finishFrame(5000, gallery));
      return out;
    };
    expect(stranger(new Tracker(opts()))).toEqual([]);
    const events = stranger(new Tracker(opts({ unknownEvents: true })));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'unknown', subjectId: null });
  });

  it('treats still images independently: every image names its people, no cooldown', () => {
    const t = new Tracker(opts({ stills: true }));
    const first = step(t, 0, [{ x: 10, k: 0 }, { x: 200, k: 1 }]);
    const second = step(t, 10, [{ x: 10, k: 0 }]);
    expect(first.events.map((e) => e.subjectId).sort()).toEqual(['s0', 's1']);
    expect(second.events.map((e) => e.subjectId)).toEqual(['s0']);
    expect(t.activeTracks).toBe(0);
  });
});
