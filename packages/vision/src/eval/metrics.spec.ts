import { describe, expect, it } from 'vitest';
import { accuracyAt, auc, bestThreshold, tarAt, verificationReport, type ScoredPair } from './metrics.js';

const pair = (score: number, same: boolean, fold = 0): ScoredPair => ({ score, same, fold });

describe('verification metrics', () => {
  it('counts accuracy at a threshold', () => {
    const pairs = [pair(0.9, true), pair(0.2, true), pair(0.1, false), pair(0.6, false)];
    expect(accuracyAt(pairs, 0.5)).toBe(0.5);
    expect(accuracyAt(pairs, 0.95)).toBe(0.5);
  });

  it('finds a separating threshold between the classes', () => {
    const pairs = [pair(0.8, true), pair(0.7, true), pair(0.3, false), pair(0.1, false)];
    const t = bestThreshold(pairs);
    expect(t).toBeGreaterThan(0.3);
    expect(t).toBeLessThan(0.7);
    expect(accuracyAt(pairs, t)).toBe(1);
  });

  it('computes AUC as the probability a genuine pair outscores an impostor', () => {
    expect(auc([pair(0.9, true), pair(0.1, false)])).toBe(1);
    expect(auc([pair(0.1, true), pair(0.9, false)])).toBe(0);
    expect(auc([pair(0.5, true), pair(0.5, false)])).toBe(0.5);
    expect(auc([pair(0.9, true), pair(0.4, true), pair(0.5, false), pair(0.1, false)])).toBe(0.75);
  });

  it('reads TAR at a FAR from the impostor tail', () => {
    const impostors = Array.from({ length: 100 }, (_, i) => pair(i / 100, false));
    const genuine = [pair(0.995, true), pair(0.985, true), pair(0.5, true), pair(0.2, true)];
    // FAR 0.01 allows one impostor (0.99) above: threshold just over 0.98.
    expect(tarAt([...impostors, ...genuine], 0.01)).toBe(0.5);
    expect(tarAt([...impostors, ...genuine], 0)).toBe(0.25);
  });

  it('chooses each fold threshold on the other folds', () => {
    const pairs: ScoredPair[] = [];
    for (let f = 0; f < 10; f++) pairs.push(pair(0.8, true, f), pair(0.2, false, f));
    pairs.push(pair(0.1, true, 3)); // one genuine pair no threshold can save
    const r = verificationReport(pairs);
    expect(r.folds).toHaveLength(10);
    expect(r.folds[3]!.accuracy).toBeCloseTo(2 / 3, 6);
    expect(r.accuracy).toBeCloseTo((9 + 2 / 3) / 10, 6);
    expect(r.threshold).toBeGreaterThan(0.1);
    expect(r.threshold).toBeLessThan(0.8);
  });
});
