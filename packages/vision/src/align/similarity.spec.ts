import { describe, expect, it } from 'vitest';
import { alignFace, ARCFACE_TEMPLATE, estimateSimilarity } from './similarity.js';

describe('similarity transform', () => {
  it('recovers a known rotation, scale and translation exactly', () => {
    const angle = 0.3, scale = 1.7, tx = 12, ty = -5;
    const a = scale * Math.cos(angle), b = scale * Math.sin(angle);
    const src = ARCFACE_TEMPLATE;
    const dst = src.map(([x, y]) => [a * x - b * y + tx, b * x + a * y + ty] as const);
    const m = estimateSimilarity(src, dst);
    expect(m.a).toBeCloseTo(a, 9);
    expect(m.b).toBeCloseTo(b, 9);
    expect(m.tx).toBeCloseTo(tx, 9);
    expect(m.ty).toBeCloseTo(ty, 9);
  });

  it('maps landmarks onto the template when warping', () => {
    // A 200x200 image with a bright dot at the would-be left eye; after alignment it lands at the template's left eye.
    const w = 200, h = 200;
    const data = new Uint8Array(w * h * 3);
    const landmarks = ARCFACE_TEMPLATE.map(([x, y]) => [x * 1.5 + 20, y * 1.5 + 30] as const);
    const [ex, ey] = landmarks[0]!;
    for (let y = Math.round(ey) - 2; y <= Math.round(ey) + 2; y++) for (let x = Math.round(ex) - 2; x <= Math.round(ex) + 2; x++) data.fill(255, (y * w + x) * 3, (y * w + x) * 3 + 3);
    const out = alignFace({ width: w, height: h, data }, landmarks);
    const [tx, ty] = ARCFACE_TEMPLATE[0]!;
    expect(out.data[(Math.round(ty) * 112 + Math.round(tx)) * 3]).toBeGreaterThan(200);
    expect(out.data[(Math.round(ty) * 112 + Math.round(tx) + 10) * 3]).toBe(0);
  });
});
