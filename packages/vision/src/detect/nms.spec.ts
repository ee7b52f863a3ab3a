import { describe, expect, it } from 'vitest';
import { iou, nms } from './nms.js';
import type { Detection } from './types.js';

const det = (x: number, score: number): Detection => ({ box: { x, y: 0, width: 10, height: 10 }, score, landmarks: [] });

describe('nms', () => {
  it('computes intersection over union', () => {
    expect(iou({ x: 0, y: 0, width: 10, height: 10 }, { x: 5, y: 0, width: 10, height: 10 })).toBeCloseTo(50 / 150, 9);
    expect(iou({ x: 0, y: 0, width: 10, height: 10 }, { x: 20, y: 0, width: 10, height: 10 })).toBe(0);
  });

  it('keeps the best of overlapping boxes and every separate box', () => {
    const kept = nms([det(0, 0.7), det(1, 0.9), det(50, 0.6)], 0.4);
    expect(kept.map((d) => d.score)).toEqual([0.9, 0.6]);
  });
});
