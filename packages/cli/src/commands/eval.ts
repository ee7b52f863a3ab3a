import { FacefleetError } from '@facefleet/protocol';
import { cosine, parsePairsFile, verificationReport } from '@facefleet/vision';
import { parse, required, UsageError, VISION_OPTIONS } from '../args.js';
import { openVision, round } from '../context.js';
import type { Io } from '../output.js';
import { largestFaceEmbedding } from './verify.js';

const USAGE = 'facefleet eval pairs --pairs <pairs.txt> --root <dir> [--json]';

/** LFW protocol verification on a pairs file (see eval/metrics.ts for the exact procedure). */
export async function evalCommand(argv: string[], io: Io): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb !== 'pairs') throw new UsageError(`unknown eval verb "${verb ?? ''}"\nusage: ${USAGE}`);
  const { values } = parse(rest, { ...VISION_OPTIONS, pairs: { type: 'string' }, root: { type: 'string' } }, USAGE);
  const pairs = parsePairsFile(required(values.pairs, 'pairs', USAGE), required(values.root, 'root', USAGE));
  const { analyzer } = await openVision(values);
  const images = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
  const embeddings = new Map<string, Float32Array | null>();
  let failures = 0;
  const started = Date.now();
  try {
    for (const [i, file] of images.entries()) {
      try {
        embeddings.set(file, await largestFaceEmbedding(analyzer, file));
      } catch (err) {
        if (!(err instanceof FacefleetError)) throw err;
        // No face (or an unreadable image) makes its pairs non-matches, as the protocol asks.
        embeddings.set(file, null);
        failures++;
        if (err.code !== 'noFace') io.err(`eval: ${err.message}`);
      }
      if ((i + 1) % 500 === 0 || i + 1 === images.length) {
        const rate = (i + 1) / ((Date.now() - started) / 1000);
        io.err(`eval: ${i + 1}/${images.length} images (${rate.toFixed(1)}/s, ${failures} without a face)`);
      }
    }
  } finally {
    await analyzer.close();
  }
  const scored = pairs.map((p) => {
    const a = embeddings.get(p.a), b = embeddings.get(p.b);
    return { same: p.same, fold: p.fold, score: a && b ? cosine(a, b) : -2 };
  });
  const r = verificationReport(scored);
  const result = {
    accuracy: round(r.accuracy),
    accuracyStd: round(r.accuracyStd),
    threshold: round(r.threshold),
    auc: round(r.auc),
    tarAtFar: { '0.001': round(r.tarAtFar['0.001']!), '0.01': round(r.tarAtFar['0.01']!) },
    failures,
    pairs: pairs.length,
    model: analyzer.embedderId,
    detector: analyzer.detectorId,
  };
  io.out(values.json === true ? JSON.stringify(result) : `accuracy ${result.accuracy} ± ${result.accuracyStd}, TAR@FAR1e-3 ${result.tarAtFar['0.001']}, TAR@FAR1e-2 ${result.tarAtFar['0.01']}, AUC ${result.auc}, threshold ${result.threshold}, ${failures} images without a face (${result.model})`);
  return 0;
}
