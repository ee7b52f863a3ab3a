import type { TemplateHit } from './flat-index.js';

export interface Candidate {
  subjectId: string;
  similarity: number;
}

export type MatchDecision =
  | { kind: 'match'; subjectId: string; similarity: number; candidates: Candidate[] }
  | { kind: 'unknown'; similarity: number; candidates: Candidate[] };

/**
 * Open-set decision: collapse template hits to the best per subject, then name the best subject
 * only when it reaches the threshold. Below it the face is unknown, never "the nearest person".
 */
export function decide(hits: readonly TemplateHit[], threshold: number, maxCandidates = 5): MatchDecision {
  const best = new Map<string, number>();
  for (const h of hits) if ((best.get(h.subjectId) ?? -Infinity) < h.similarity) best.set(h.subjectId, h.similarity);
  const candidates = [...best]
    .map(([subjectId, similarity]) => ({ subjectId, similarity }))
    .sort((a, b) => b.similarity - a.similarity)
    .slice(0, maxCandidates);
  const top = candidates[0];
  if (top && top.similarity >= threshold) return { kind: 'match', subjectId: top.subjectId, similarity: top.similarity, candidates };
  return { kind: 'unknown', similarity: top?.similarity ?? 0, candidates };
}

/**
 * Give each face at most one subject and each subject at most one face (two faces in one frame
 * are never the same person): greedy on similarity across the whole frame. Faces that lose
 * their subject to a better face fall back to their next candidate above the threshold.
 */
export function assignUnique(decisions: readonly MatchDecision[], threshold: number): MatchDecision[] {
  const pairs: { face: number; subjectId: string; similarity: number }[] = [];
  decisions.forEach((d, face) => d.candidates.forEach((c) => c.similarity >= threshold && pairs.push({ face, ...c })));
  pairs.sort((a, b) => b.similarity - a.similarity);
  const faceTaken = new Map<number, { subjectId: string; similarity: number }>();
  const subjectTaken = new Set<string>();
  for (const p of pairs) {
    if (faceTaken.has(p.face) || subjectTaken.has(p.subjectId)) continue;
    faceTaken.set(p.face, p);
    subjectTaken.add(p.subjectId);
  }
  return decisions.map((d, face) => {
    const got = faceTaken.get(face);
    return got
      ? { kind: 'match', subjectId: got.subjectId, similarity: got.similarity, candidates: d.candidates }
      : { kind: 'unknown', similarity: d.candidates[0]?.similarity ?? 0, candidates: d.candidates };
  });
}
