// Accuracy part of `pnpm bench` (issue 6, item 1): LFW3D verification for every embedder,
// detection recall/precision on detection_voc, false faces on edge_demo/negatives, and the
// default thresholds with the measurements that back them.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { FacefleetError } from '@facefleet/protocol';
import { cosine, FaceAnalyzer, iou, loadManifest, modelsDir, parsePairsFile, StageTimes, verificationReport, type Box, type DetectedFace, type ModelEntry, type ScoredPair } from '@facefleet/vision';
import { lineChart, type Point } from './charts.js';

export interface AccuracyOptions {
  /** LFW3D on folds 1-2 only (1,200 pairs, 2-fold cross-validation), for `pnpm bench --quick`. */
  quick: boolean;
  /** onnxruntime intra-op threads (0: every core). */
  threads: number;
  log: (t: string) => void;
}

export interface EmbedderLfw {
  pairs: number;
  folds: number;
  accuracy: number;
  accuracyStd: number;
  tarAtFar: { '0.001': number; '0.01': number };
  auc: number;
  /** Images without a face (or unreadable): their pairs score -2, a certain non-match. */
  failures: number;
  /** The manifest's default cosine threshold, and what it gives on these pairs. */
  threshold: number;
  atThreshold: { far: number; tar: number };
  /** Mean of the per-fold thresholds the protocol chose (what LFW3D alone would pick). */
  cvThreshold: number;
  embedMsPerFace: number;
  /** [FAR, TAR], FAR log-spaced, at most 200 points. */
  roc: Point[];
}

export interface DetectorAccuracy {
  model: string;
  scoreThreshold: number;
  iou: number;
  voc: { images: number; faces: number; ignored: number; truePositives: number; falsePositives: number; falseNegatives: number; recall: number; precision: number; meanIou: number };
  negatives: { images: number; falseFaces: number; imagesWithFaces: string[] };
  /** Where faces and non-faces score: the lowest-scoring VOC face found, the highest-scoring false face. */
  lowestFaceScore: number | null;
  highestFalseScore: { score: number; file: string } | null;
  sweep: { scoreThreshold: number; recall: number; precision: number; falseFacesOnNegatives: number }[];
}

export interface ThresholdNote {
  model: string;
  kind: 'embedder' | 'detector';
  threshold: number;
  why: string;
}

export interface AccuracyResult {
  quick: boolean;
  lfw3dSetup: { detector: string; pairs: number; images: number; folds: number; subset: string | null; seconds: number };
  lfw3d: Record<string, EmbedderLfw>;
  /** faceapi_bbt + dlib_johns, all pairs within each set: where the default thresholds came from. */
  identitySets: Record<string, { genuinePairs: number; impostorPairs: number; minGenuine: number; maxImpostor: number; genuineBelow: number; impostorsAbove: number }>;
  detection: DetectorAccuracy[];
  thresholds: ThresholdNote[];
  skipped: { model: string; reason: string }[];
  seconds: number;
}

const QUICK_FOLDS = 2;
/** The fastest shipped embedder: the second operating point next to the default (peer part too). */
export const FAST_PROFILE_EMBEDDER = 'mobilefacenet-128d-a';
const IOU_MIN = 0.5;
const SWEEP = [0.3, 0.4, 0.45, 0.5, 0.6, 0.65, 0.7, 0.8, 0.9];
const r4 = (v: number): number => Math.round(v * 1e4) / 1e4;

interface OpenEmbedder {
  id: string;
  threshold: number;
  analyzer: FaceAnalyzer;
  times: StageTimes;
}

/** Run every accuracy measurement. Models whose file is absent or fails to load are listed in `skipped`. */
export async function benchAccuracy(dataDir: string, opts: AccuracyOptions): Promise<AccuracyResult> {
  const started = performance.now();
  const manifest = loadManifest();
  const skipped: AccuracyResult['skipped'] = [];
  const present = (kind: ModelEntry['kind']): ModelEntry[] =>
    manifest.models.filter((m) => {
      if (m.kind !== kind) return false;
      if (existsSync(join(modelsDir(), m.file))) return true;
      skipped.push({ model: m.id, reason: `file ${m.file} is not in ${modelsDir()}` });
      return false;
    });
  const embedders: OpenEmbedder[] = [];
  for (const e of present('embedder')) {
    // Quick mode: the default embedder and the fast profile the peer part compares (every embedder in the full run).
    if (opts.quick && e.id !== manifest.defaults.embedder && e.id !== FAST_PROFILE_EMBEDDER) {
      skipped.push({ model: e.id, reason: 'quick mode measures the default and the fast-profile embedders only' });
      continue;
    }
    const times = new StageTimes();
    try {
      embedders.push({ id: e.id, threshold: e.threshold ?? 0, times, analyzer: await FaceAnalyzer.open({ embedder: e.id, threads: opts.threads, times }) });
    } catch (err) {
      if (!(err instanceof FacefleetError)) throw err;
      skipped.push({ model: e.id, reason: err.message });
    }
  }
  // Detection runs once per image with the default detector (every analyzer has it; the first one's is used).
  const detector = embedders.find((e) => e.id === manifest.defaults.embedder) ?? embedders[0];
  if (!detector) throw new Error('accuracy: no embedder could be loaded');
  let lfw: Pick<AccuracyResult, 'lfw3d' | 'lfw3dSetup'>;
  let identitySets: AccuracyResult['identitySets'];
  try {
    lfw = await lfw3d(dataDir, detector.analyzer, embedders, opts);
    identitySets = await identities(dataDir, detector.analyzer, embedders, opts);
  } finally {
    for (const e of embedders) await e.analyzer.close();
  }
  const detection: DetectorAccuracy[] = [];
  for (const d of present('detector')) {
    try {
      detection.push(await detectorAccuracy(dataDir, d, opts));
    } catch (err) {
      if (!(err instanceof FacefleetError)) throw err;
      skipped.push({ model: d.id, reason: err.message });
    }
  }
  const thresholds = [
    ...Object.entries(lfw.lfw3d).map(([model, x]) => embedderNote(model, x, identitySets[model])),
    ...detection.map((d) => detectorNote(d, manifest.defaults.detector)),
  ];
  return { quick: opts.quick, ...lfw, identitySets, detection, thresholds, skipped, seconds: Math.round((performance.now() - started) / 100) / 10 };
}

/** Largest face per image (the default detector at its required-face threshold, as `facefleet eval`), embedded by every embedder. */
async function embedAll(files: readonly string[], detector: FaceAnalyzer, embedders: readonly OpenEmbedder[], opts: AccuracyOptions, label: string): Promise<{ vectors: Map<string, Map<string, Float32Array>>; failures: number }> {
  const vectors = new Map(embedders.map((e) => [e.id, new Map<string, Float32Array>()]));
  let failures = 0;
  const started = performance.now();
  for (const [i, file] of files.entries()) {
    let face: DetectedFace | undefined;
    try {
      face = await detector.largestFace(await detector.decode(file));
    } catch (err) {
      if (!(err instanceof FacefleetError)) throw err;
      opts.log(`accuracy: ${err.message}`);
    }
    if (face) {
      for (const e of embedders) vectors.get(e.id)!.set(file, (await e.analyzer.embed([face]))[0]!.embedding.vector);
    } else failures++;
    if ((i + 1) % 500 === 0 || i + 1 === files.length) {
      const s = (performance.now() - started) / 1000;
      opts.log(`accuracy: ${label} ${i + 1}/${files.length} images, ${s.toFixed(0)} s (${((i + 1) / s).toFixed(1)}/s), ${failures} without a face`);
    }
  }
  return { vectors, failures };
}

async function lfw3d(dataDir: string, detector: FaceAnalyzer, embedders: readonly OpenEmbedder[], opts: AccuracyOptions): Promise<Pick<AccuracyResult, 'lfw3d' | 'lfw3dSetup'>> {
  const root = join(dataDir, 'lfw3d');
  const all = parsePairsFile(join(root, 'pairs.txt'), join(root, 'images'));
  const pairs = opts.quick ? all.filter((p) => p.fold < QUICK_FOLDS) : all;
  const images = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
  const started = performance.now();
  const { vectors, failures } = await embedAll(images, detector, embedders, opts, 'LFW3D');
  const lfw: Record<string, EmbedderLfw> = {};
  for (const e of embedders) {
    const v = vectors.get(e.id)!;
    const scored: ScoredPair[] = pairs.map((p) => {
      const a = v.get(p.a), b = v.get(p.b);
      return { same: p.same, fold: p.fold, score: a && b ? cosine(a, b) : -2 };
    });
    const r = verificationReport(scored);
    const embed = e.times.totals.get('embed');
    lfw[e.id] = {
      pairs: pairs.length,
      folds: r.folds.length,
      accuracy: r4(r.accuracy),
      accuracyStd: r4(r.accuracyStd),
      tarAtFar: { '0.001': r4(r.tarAtFar['0.001']!), '0.01': r4(r.tarAtFar['0.01']!) },
      auc: r4(r.auc),
      failures,
      threshold: e.threshold,
      atThreshold: ratesAt(scored, e.threshold),
      cvThreshold: r4(r.threshold),
      embedMsPerFace: embed ? Math.round((embed.ms / embed.calls) * 100) / 100 : 0,
      roc: rocCurve(scored),
    };
  }
  const setup = {
    detector: detector.detectorId,
    pairs: pairs.length,
    images: images.length,
    folds: new Set(pairs.map((p) => p.fold)).size,
    subset: opts.quick ? `quick: folds 1-${QUICK_FOLDS} of 10 only (${pairs.length} of ${all.length} pairs), ${QUICK_FOLDS}-fold cross-validation` : null,
    seconds: Math.round((performance.now() - started) / 100) / 10,
  };
  return { lfw3d: lfw, lfw3dSetup: setup };
}

/** FAR and TAR of "same iff score >= t". */
function ratesAt(pairs: readonly ScoredPair[], t: number): { far: number; tar: number } {
  const rate = (same: boolean): number => {
    const xs = pairs.filter((p) => p.same === same);
    return r4(xs.filter((p) => p.score >= t).length / Math.max(1, xs.length));
  };
  return { far: rate(false), tar: rate(true) };
}

/**
 * ROC as [FAR, TAR] with "accept iff score > impostor[k]" for log-spaced k (k impostors above the
 * threshold at most), the same convention as tarAt() in eval/metrics.ts, so the curve passes
 * through the TAR@FAR figures of the table.
 */
export function rocCurve(pairs: readonly ScoredPair[], maxPoints = 200): Point[] {
  const impostors = pairs.filter((p) => !p.same).map((p) => p.score).sort((a, b) => b - a);
  const genuine = pairs.filter((p) => p.same).map((p) => p.score).sort((a, b) => b - a);
  const n = impostors.length;
  if (n === 0 || genuine.length === 0) return [];
  const above = (desc: number[], t: number): number => {
    let lo = 0, hi = desc.length; // first index with desc[i] <= t
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (desc[mid]! > t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const ks = new Set([0]);
  for (let i = 0; i < maxPoints - 1; i++) ks.add(Math.round(n ** (i / (maxPoints - 2))));
  const out: Point[] = [];
  for (const k of [...ks].sort((a, b) => a - b)) {
    const t = impostors[k] ?? -Infinity;
    const pt: Point = [r4(above(impostors, t) / n), r4(above(genuine, t) / genuine.length)];
    const last = out[out.length - 1];
    if (!last || last[0] !== pt[0] || last[1] !== pt[1]) out.push(pt);
  }
  return out.slice(0, maxPoints);
}

/** Every pair within faceapi_bbt and within dlib_johns (one person per folder). */
async function identities(dataDir: string, detector: FaceAnalyzer, embedders: readonly OpenEmbedder[], opts: AccuracyOptions): Promise<AccuracyResult['identitySets']> {
  const sets = ['faceapi_bbt', 'dlib_johns'].map((s) => join(dataDir, s, 'identities')).filter((d) => existsSync(d));
  const files = sets.map((d) => readdirSync(d).sort().flatMap((person) => readdirSync(join(d, person)).sort().map((f) => ({ file: join(d, person, f), person, set: d }))));
  const { vectors } = await embedAll(files.flat().map((f) => f.file), detector, embedders, opts, 'identity sets');
  const out: AccuracyResult['identitySets'] = {};
  for (const e of embedders) {
    const v = vectors.get(e.id)!;
    const gen: number[] = [], imp: number[] = [];
    for (const set of files) {
      for (let i = 0; i < set.length; i++) {
        for (let j = i + 1; j < set.length; j++) {
          const a = v.get(set[i]!.file), b = v.get(set[j]!.file);
          if (a && b) (set[i]!.person === set[j]!.person ? gen : imp).push(cosine(a, b));
        }
      }
    }
    out[e.id] = {
      genuinePairs: gen.length,
      impostorPairs: imp.length,
      minGenuine: r4(Math.min(...gen)),
      maxImpostor: r4(Math.max(...imp)),
      genuineBelow: gen.filter((s) => s < e.threshold).length,
      impostorsAbove: imp.filter((s) => s >= e.threshold).length,
    };
  }
  return out;
}

interface GroundTruth {
  file: string;
  boxes: { box: Box; ignore: boolean }[];
}

/**
 * dlib imglab XML (`<image file=…><box top left width height [ignore='1']/>`): training.xml and,
 * where present, testing.xml. Ignored boxes (and VOC-style `difficult`) neither count as misses nor
 * make a detection on them a false positive.
 */
export function readImglab(dir: string): GroundTruth[] {
  const out: GroundTruth[] = [];
  for (const name of ['training.xml', 'testing.xml']) {
    const path = join(dir, name);
    if (!existsSync(path)) continue;
    for (const m of readFileSync(path, 'latin1').matchAll(/<image\b([^>]*)>([\s\S]*?)<\/image>/g)) {
      const file = attrs(m[1]!).file;
      if (file === undefined || !existsSync(join(dir, file))) continue;
      const boxes = [...m[2]!.matchAll(/<box\b([^>]*)>/g)].map((b) => {
        const a = attrs(b[1]!);
        return { box: { x: Number(a.left), y: Number(a.top), width: Number(a.width), height: Number(a.height) }, ignore: a.ignore === '1' || a.difficult === '1' };
      });
      out.push({ file: join(dir, file), boxes });
    }
  }
  return out;
}

const attrs = (s: string): Record<string, string> => Object.fromEntries([...s.matchAll(/([\w-]+)\s*=\s*['"]([^'"]*)['"]/g)].map((m) => [m[1]!, m[2]!]));

interface Scored {
  box: Box;
  score: number;
}

/** Greedy matching, highest score first, each face at most once (PASCAL VOC's rule). */
function matchFaces(dets: readonly Scored[], gt: GroundTruth['boxes']): { tp: number; fp: number; fn: number; ious: number[]; tpScores: number[] } {
  const used = new Set<number>();
  const ious: number[] = [], tpScores: number[] = [];
  let fp = 0;
  for (const d of [...dets].sort((a, b) => b.score - a.score)) {
    let best = -1, bestIou = IOU_MIN;
    gt.forEach((g, i) => {
      const o = iou(d.box, g.box);
      if (!used.has(i) && o >= bestIou) [best, bestIou] = [i, o];
    });
    if (best < 0) fp++;
    else {
      used.add(best);
      if (!gt[best]!.ignore) {
        ious.push(bestIou);
        tpScores.push(d.score);
      }
    }
  }
  const fn = gt.filter((g, i) => !g.ignore && !used.has(i)).length;
  return { tp: ious.length, fp, fn, ious, tpScores };
}

async function detectorAccuracy(dataDir: string, entry: ModelEntry, opts: AccuracyOptions): Promise<DetectorAccuracy> {
  const threshold = entry.scoreThreshold ?? 0.6;
  const low = Math.min(SWEEP[0]!, threshold);
  // One pass at the lowest threshold: greedy NMS keeps a box only against higher-scoring ones, so
  // filtering afterwards gives exactly what a pass at any higher threshold would.
  const fa = await FaceAnalyzer.open({ detector: entry.id, threads: opts.threads, detect: { scoreThreshold: low } });
  const gt = readImglab(join(dataDir, 'detection_voc'));
  const negDir = join(dataDir, 'edge_demo', 'negatives');
  const negatives = readdirSync(negDir).sort().map((f) => join(negDir, f));
  const found = new Map<string, Scored[]>();
  try {
    for (const file of [...gt.map((g) => g.file), ...negatives]) found.set(file, (await fa.detect(await fa.decode(file))).map((d) => ({ box: d.box, score: d.score })));
  } finally {
    await fa.close();
  }
  const at = (t: number): { tp: number; fp: number; fn: number; ious: number[]; tpScores: number[]; neg: Scored[][] } => {
    const ms = gt.map((g) => matchFaces(found.get(g.file)!.filter((d) => d.score >= t), g.boxes));
    const sum = (k: 'tp' | 'fp' | 'fn'): number => ms.reduce((a, m) => a + m[k], 0);
    return { tp: sum('tp'), fp: sum('fp'), fn: sum('fn'), ious: ms.flatMap((m) => m.ious), tpScores: ms.flatMap((m) => m.tpScores), neg: negatives.map((f) => found.get(f)!.filter((d) => d.score >= t)) };
  };
  const ratio = (a: number, b: number): number => (b === 0 ? 0 : r4(a / b));
  const x = at(threshold);
  const lowest = at(low).tpScores;
  const highest = negatives.flatMap((f) => found.get(f)!.map((d) => ({ score: d.score, file: basename(f) }))).sort((a, b) => b.score - a.score)[0];
  opts.log(`accuracy: ${entry.id}: VOC recall ${ratio(x.tp, x.tp + x.fn)}, precision ${ratio(x.tp, x.tp + x.fp)}, ${x.neg.flat().length} false faces on negatives`);
  return {
    model: entry.id,
    scoreThreshold: threshold,
    iou: IOU_MIN,
    voc: {
      images: gt.length,
      faces: gt.reduce((a, g) => a + g.boxes.filter((b) => !b.ignore).length, 0),
      ignored: gt.reduce((a, g) => a + g.boxes.filter((b) => b.ignore).length, 0),
      truePositives: x.tp,
      falsePositives: x.fp,
      falseNegatives: x.fn,
      recall: ratio(x.tp, x.tp + x.fn),
      precision: ratio(x.tp, x.tp + x.fp),
      meanIou: r4(x.ious.reduce((a, b) => a + b, 0) / Math.max(1, x.ious.length)),
    },
    negatives: { images: negatives.length, falseFaces: x.neg.flat().length, imagesWithFaces: negatives.filter((_, i) => x.neg[i]!.length > 0).map((f) => basename(f)) },
    lowestFaceScore: lowest.length > 0 ? r4(Math.min(...lowest)) : null,
    highestFalseScore: highest ? { score: r4(highest.score), file: highest.file } : null,
    sweep: SWEEP.filter((t) => t >= low).map((t) => {
      const s = at(t);
      return { scoreThreshold: t, recall: ratio(s.tp, s.tp + s.fn), precision: ratio(s.tp, s.tp + s.fp), falseFacesOnNegatives: s.neg.flat().length };
    }),
  };
}

function embedderNote(model: string, x: EmbedderLfw, ids: AccuracyResult['identitySets'][string] | undefined): ThresholdNote {
  const sets = ids
    ? `set on faceapi_bbt + dlib_johns a little above the highest different-person similarity (now ${ids.maxImpostor}: ${ids.impostorsAbove} of ${ids.impostorPairs} impostor pairs at or above it; lowest same-person ${ids.minGenuine}, ${ids.genuineBelow} of ${ids.genuinePairs} below it)`
    : 'set on faceapi_bbt + dlib_johns (absent here)';
  return {
    model,
    kind: 'embedder',
    threshold: x.threshold,
    why: `${sets}; on LFW3D it accepts ${x.atThreshold.far} of impostor pairs (FAR) and ${x.atThreshold.tar} of genuine pairs (TAR); LFW3D's own cross-validated threshold would be ${x.cvThreshold} (90-px frontalised crops score genuine pairs lower).`,
  };
}

function detectorNote(d: DetectorAccuracy, defaultId: string): ThresholdNote {
  const hi = d.highestFalseScore ? `${d.highestFalseScore.score} (${d.highestFalseScore.file})` : 'none';
  const separates = d.highestFalseScore === null || d.lowestFaceScore === null || d.highestFalseScore.score < d.lowestFaceScore;
  return {
    model: d.model,
    kind: 'detector',
    threshold: d.scoreThreshold,
    why:
      `${d.model === defaultId ? 'default detector; ' : ''}at ${d.scoreThreshold}: VOC recall ${d.voc.recall}, precision ${d.voc.precision}, ${d.negatives.falseFaces} false faces on ${d.negatives.images} negatives. ` +
      `Highest non-face score ${hi}, lowest VOC face found ${d.lowestFaceScore ?? 'none'}: scores ${separates ? 'separate' : 'do not separate'} faces from non-faces here.`,
  };
}

const pct = (v: number): string => v.toFixed(4);

/** Markdown for bench/REPORT.md (heading level 2 and 3); charts are referenced as charts/*.svg. */
export function accuracyReport(r: AccuracyResult): string[] {
  const s = r.lfw3dSetup;
  const voc = r.detection[0]?.voc;
  return [
    '## Accuracy',
    '',
    `LFW protocol on \`lfw3d\` (LFW3D frontalised 90x90 crops): ${s.pairs} pairs, ${s.images} images, ${s.folds} folds (each fold's threshold chosen on the others); TAR@FAR and AUC pooled over every pair. ` +
      `Detection runs once per image with ${s.detector} (the largest face, at its required-face threshold, as \`facefleet eval pairs\`); every embedder embeds that aligned face. An image without a face makes its pairs certain non-matches. ${s.seconds} s for all embedders.` +
      (s.subset ? ` **Subset:** ${s.subset}.` : ''),
    '',
    '| embedder | accuracy | TAR@FAR 1e-3 | TAR@FAR 1e-2 | AUC | images without a face | default threshold | FAR / TAR at it | embed ms per face |',
    '|---|---|---|---|---|---|---|---|---|',
    ...Object.entries(r.lfw3d).map(
      ([id, x]) => `| ${id} | ${pct(x.accuracy)} ± ${pct(x.accuracyStd)} | ${pct(x.tarAtFar['0.001'])} | ${pct(x.tarAtFar['0.01'])} | ${pct(x.auc)} | ${x.failures} of ${s.images} | ${x.threshold} | ${x.atThreshold.far} / ${x.atThreshold.tar} | ${x.embedMsPerFace} |`,
    ),
    '',
    '![ROC curves on LFW3D](charts/roc.svg)',
    '',
    '### Detection',
    '',
    voc
      ? `\`detection_voc\`: ${voc.images} PASCAL VOC photos, ${voc.faces} annotated faces${voc.ignored ? ` (${voc.ignored} more marked ignore: neither misses nor false positives)` : ' (none marked ignore or difficult)'}; a detection is correct at IoU >= ${r.detection[0]!.iou} with an unmatched face (highest score first). The annotations are dlib's tight eyebrow-to-chin squares, so IoU with a detector's own box convention is modest (mean IoU column). \`edge_demo/negatives\`: images with no human face (dogs.jpg has dog faces). Each detector at its default score threshold.`
      : 'No detector could be measured.',
    '',
    '| detector | score threshold | recall | precision | TP / FP / FN | mean IoU | false faces on negatives | highest non-face score | lowest face score found |',
    '|---|---|---|---|---|---|---|---|---|',
    ...r.detection.map(
      (d) =>
        `| ${d.model} | ${d.scoreThreshold} | ${pct(d.voc.recall)} | ${pct(d.voc.precision)} | ${d.voc.truePositives} / ${d.voc.falsePositives} / ${d.voc.falseNegatives} | ${d.voc.meanIou} | ${d.negatives.falseFaces}${d.negatives.imagesWithFaces.length ? ` (${d.negatives.imagesWithFaces.join(', ')})` : ''} | ${d.highestFalseScore ? `${d.highestFalseScore.score} (${d.highestFalseScore.file})` : '-'} | ${d.lowestFaceScore ?? '-'} |`,
    ),
    '',
    '### Default thresholds and why',
    '',
    'Embedder thresholds (cosine, `threshold` in `models/manifest.json`) come from the open identity sets, never from LFW3D; detector thresholds (`scoreThreshold`) from the VOC faces and the negatives. Figures below are from this run.',
    '',
    ...r.thresholds.map((t) => `- **${t.model}** ${t.kind === 'embedder' ? 'match' : 'score'} threshold ${t.threshold}: ${t.why}`),
    '',
    ...(r.skipped.length ? [`Not measured: ${r.skipped.map((x) => `${x.model} (${x.reason})`).join('; ')}.`, ''] : []),
  ];
}

/** Chart files of this part, by file name (written under bench/charts/). */
export function accuracyCharts(r: AccuracyResult, caption: readonly string[]): Record<string, string> {
  const s = r.lfw3dSetup;
  return {
    'roc.svg': lineChart({
      title: `ROC on LFW3D (${s.pairs} pairs${s.subset ? ', quick subset' : ''}), detector ${s.detector}`,
      xLabel: 'false accept rate (log)',
      yLabel: 'true accept rate',
      xLog: true,
      yDomain: [0, 1],
      series: Object.entries(r.lfw3d).map(([name, x]) => ({ name, points: x.roc })),
      xMarks: [
        { x: 1e-3, label: 'FAR 1e-3' },
        { x: 1e-2, label: 'FAR 1e-2' },
      ],
      caption,
    }),
  };
}
