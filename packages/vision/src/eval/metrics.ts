/** A scored pair: `score` is the similarity (higher = more alike); NaN never appears. */
export interface ScoredPair {
  score: number;
  same: boolean;
  fold: number;
}

export interface VerificationReport {
  accuracy: number;
  accuracyStd: number;
  threshold: number;
  auc: number;
  tarAtFar: Record<string, number>;
  folds: { threshold: number; accuracy: number }[];
}

/** Accuracy of "same iff score >= t". */
export function accuracyAt(pairs: readonly ScoredPair[], t: number): number {
  let ok = 0;
  for (const p of pairs) if ((p.score >= t) === p.same) ok++;
  return pairs.length === 0 ? 0 : ok / pairs.length;
}

/** The threshold maximising accuracy on `pairs` (midpoints between sorted scores are tried). */
export function bestThreshold(pairs: readonly ScoredPair[]): number {
  const sorted = [...pairs].sort((a, b) => a.score - b.score);
  // Sweep: with threshold just above sorted[i], pairs 0..i say "different".
  let correct = sorted.filter((p) => p.same).length; // threshold below everything: all "same"
  let best = correct;
  let bestT = (sorted[0]?.score ?? 0) - 1e-6;
  for (let i = 0; i < sorted.length; i++) {
    correct += sorted[i]!.same ? -1 : 1;
    const next = sorted[i + 1]?.score ?? sorted[i]!.score + 2e-6;
    if (next === sorted[i]!.score) continue;
    if (correct > best) {
      best = correct;
      bestT = (sorted[i]!.score + next) / 2;
    }
  }
  return bestT;
}

/**
 * LFW protocol: for each fold, the threshold is chosen on the other nine and accuracy measured
 * on it; `threshold` is the mean of the ten. TAR@FAR and AUC are pooled over every pair.
 */
export function verificationReport(pairs: readonly ScoredPair[], fars: readonly number[] = [1e-3, 1e-2]): VerificationReport {
  const foldIds = [...new Set(pairs.map((p) => p.fold))].sort((a, b) => a - b);
  const folds = foldIds.map((f) => {
    const threshold = bestThreshold(pairs.filter((p) => p.fold !== f));
    return { threshold, accuracy: accuracyAt(pairs.filter((p) => p.fold === f), threshold) };
  });
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const accuracy = mean(folds.map((f) => f.accuracy));
  const accuracyStd = Math.sqrt(mean(folds.map((f) => (f.accuracy - accuracy) ** 2)));
  const tarAtFar: Record<string, number> = {};
  for (const far of fars) tarAtFar[String(far)] = tarAt(pairs, far);
  return { accuracy, accuracyStd, threshold: mean(folds.map((f) => f.threshold)), auc: auc(pairs), tarAtFar, folds };
}

/** True-accept rate at the strictest threshold whose false-accept rate does not exceed `far`. */
export function tarAt(pairs: readonly ScoredPair[], far: number): number {
  const impostors = pairs.filter((p) => !p.same).map((p) => p.score).sort((a, b) => b - a);
  const genuine = pairs.filter((p) => p.same).map((p) => p.score);
  if (impostors.length === 0 || genuine.length === 0) return 0;
  const allowed = Math.floor(far * impostors.length);
  // Threshold strictly above the (allowed+1)-th highest impostor score.
  const t = impostors[allowed] ?? -Infinity;
  return genuine.filter((s) => s > t).length / genuine.length;
}

/** Area under the ROC curve (Mann-Whitney U, ties counted half). */
export function auc(pairs: readonly ScoredPair[]): number {
  const sorted = [...pairs].sort((a, b) => a.score - b.score);
  let rankSum = 0;
  let i = 0;
  while (i < sorted.length) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1]!.score === sorted[i]!.score) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (sorted[k]!.same) rankSum += rank;
    i = j + 1;
  }
  const pos = pairs.filter((p) => p.same).length;
  const neg = pairs.length - pos;
  if (pos === 0 || neg === 0) return 0;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}
