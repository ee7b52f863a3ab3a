import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { FacefleetError, type ErrorCode } from '@facefleet/protocol';
import { cosine, type FaceAnalyzer } from '@facefleet/vision';
import { parse, UsageError, VISION_OPTIONS } from '../args.js';
import { openVision, round } from '../context.js';
import type { Io } from '../output.js';
import { withFile } from './detect.js';

const USAGE = 'facefleet verify <imageA> <imageB> [--json] | facefleet verify --pairs <list.csv> [--json]';

export class NoFaceError extends FacefleetError {
  constructor(file: string) {
    super('noFace', `${file}: no face found`);
  }
}

/** Embedding of the largest face in an image file. */
export async function largestFaceEmbedding(analyzer: FaceAnalyzer, file: string): Promise<Float32Array> {
  const image = await withFile(file, analyzer.decode(file));
  const largest = await analyzer.largestFace(image);
  if (!largest) throw new NoFaceError(file);
  const [analysed] = await analyzer.embed([largest]);
  return analysed!.embedding.vector;
}

export async function verifyCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { ...VISION_OPTIONS, pairs: { type: 'string' } }, USAGE);
  if (values.pairs !== undefined) {
    if (positionals.length > 0) throw new UsageError(`--pairs takes no image arguments\nusage: ${USAGE}`);
    return verifyList(values.pairs, values, io);
  }
  if (positionals.length !== 2) throw new UsageError(`verify takes two images\nusage: ${USAGE}`);
  const [a, b] = positionals as [string, string];
  const { analyzer, threshold } = await openVision(values);
  try {
    const similarity = cosine(await largestFaceEmbedding(analyzer, a), await largestFaceEmbedding(analyzer, b));
    const result = { similarity: round(similarity), match: similarity >= threshold, threshold, model: analyzer.embedderId };
    io.out(values.json === true ? JSON.stringify(result) : `${result.match ? 'same person' : 'different people'} (similarity ${result.similarity}, threshold ${threshold}, ${result.model})`);
    return 0;
  } finally {
    await analyzer.close();
  }
}

async function verifyList(listPath: string, flags: Parameters<typeof openVision>[0] & { json?: boolean | undefined }, io: Io): Promise<number> {
  let text: string;
  try {
    text = await readFile(listPath, 'utf8');
  } catch (err) {
    throw new FacefleetError('usage', `${listPath}: cannot read pair list (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const base = dirname(resolve(listPath));
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const { analyzer, threshold } = await openVision(flags);
  const cache = new Map<string, Float32Array | ErrorCode>();
  const embed = async (file: string): Promise<Float32Array | ErrorCode> => {
    const path = resolve(base, file);
    let hit = cache.get(path);
    if (hit === undefined) {
      try {
        hit = await largestFaceEmbedding(analyzer, path);
      } catch (err) {
        if (!(err instanceof FacefleetError)) throw err;
        hit = err.code;
      }
      cache.set(path, hit);
    }
    return hit;
  };
  try {
    const results: { a: string; b: string; similarity?: number; match: boolean; error?: string }[] = [];
    for (const [i, line] of lines.entries()) {
      const cells = line.split(',').map((c) => c.trim());
      if (cells.length !== 2 || cells[0] === '' || cells[1] === '') {
        results.push({ a: cells[0] ?? '', b: cells[1] ?? '', match: false, error: 'badLine' });
        io.err(`${listPath}:${i + 1}: expected "imageA,imageB"`);
        continue;
      }
      const [a, b] = cells as [string, string];
      const ea = await embed(a);
      const eb = await embed(b);
      if (typeof ea === 'string') {
        results.push({ a, b, match: false, error: ea });
        continue;
      }
      if (typeof eb === 'string') {
        results.push({ a, b, match: false, error: eb });
        continue;
      }
      const similarity = cosine(ea, eb);
      results.push({ a, b, similarity: round(similarity), match: similarity >= threshold });
    }
    if (flags.json === true) io.out(JSON.stringify({ results, threshold, model: analyzer.embedderId }));
    else for (const r of results) io.out(`${r.a},${r.b},${r.error ?? `${r.similarity ?? ''},${r.match ? 'match' : 'no match'}`}`);
    return 0;
  } finally {
    await analyzer.close();
  }
}
