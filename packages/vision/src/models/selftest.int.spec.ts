import { describe, expect, it } from 'vitest';
import { findModel, modelFile } from './manifest.js';
import { checkSelfTest, makeSelfTest, sampleCosine, selfTestInput } from './selftest.js';
import { openSession } from './session.js';

describe('model self-test (real models)', () => {
  it('gives the same seeded input everywhere', () => {
    const a = selfTestInput([1, 3, 4, 4], 7);
    expect(Array.from(selfTestInput([1, 3, 4, 4], 7))).toEqual(Array.from(a));
    expect(Math.max(...a)).toBeLessThanOrEqual(1);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(-1);
    expect(Array.from(selfTestInput([1, 3, 4, 4], 8))).not.toEqual(Array.from(a));
  });

  it('passes the model it was made from, in a fresh session with other threads, and fails another model', async () => {
    const det = findModel('scrfd-500m');
    const spec = await makeSelfTest(modelFile(det), det);
    expect(spec.shape).toEqual([1, 3, 320, 320]);
    expect(spec.output.length).toBeGreaterThan(100);
    const same = await openSession(modelFile(det), { threads: 2 });
    const r = await checkSelfTest(same, det.input.name, spec);
    await same.release();
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.cosine).toBeGreaterThan(0.9999);
    const otherEntry = findModel('scrfd-2.5g');
    const other = await openSession(modelFile(otherEntry), { threads: 1 });
    const bad = await checkSelfTest(other, otherEntry.input.name, spec);
    await other.release();
    expect(bad.ok).toBe(false);
    expect(sampleCosine([1, 0], [0, 1])).toBe(0);
  });
});
