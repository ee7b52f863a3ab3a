// node --conditions=source --import tsx bench/lfw3d-genuine.ts [--threads n]
// Writes bench/lfw3d-genuine.json: the cosine similarity of every genuine (same-person) pair of
// LFW3D's pairs.txt, as the default pipeline (`facefleet eval pairs` without flags) scores it.
// bench/identify.ts plants its true matches at these similarities (issue 6, item 4).
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FacefleetError } from '@facefleet/protocol';
import { cosine, FaceAnalyzer, parsePairsFile } from '@facefleet/vision';

const here = import.meta.dirname;
const { values } = parseArgs({ options: { threads: { type: 'string' } }, strict: true });
const dataDir = process.env.FACEFLEET_DATA_DIR ? resolve(process.env.FACEFLEET_DATA_DIR) : resolve(here, '..', '..', 'shared', 'data');
const root = join(dataDir, 'lfw3d');
const log = (t: string): void => void process.stderr.write(`${t}\n`);

const pairs = parsePairsFile(join(root, 'pairs.txt'), join(root, 'images')).filter((p) => p.same);
const analyzer = await FaceAnalyzer.open({ threads: Number(values.threads ?? 1) });
const images = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
const embeddings = new Map<string, Float32Array>();
const started = Date.now();
try {
  for (const [i, file] of images.entries()) {
    // As eval does: the largest face, found at the detector's lower required-face threshold.
    try {
      const face = await analyzer.largestFace(await analyzer.decode(file));
      if (face) embeddings.set(file, (await analyzer.embed([face]))[0]!.embedding.vector);
    } catch (err) {
      if (!(err instanceof FacefleetError)) throw err;
      log(`lfw3d-genuine: ${err.message}`);
    }
    if ((i + 1) % 500 === 0 || i + 1 === images.length) log(`lfw3d-genuine: ${i + 1}/${images.length} images, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
} finally {
  await analyzer.close();
}

const similarities: number[] = [];
let withoutFace = 0;
for (const p of pairs) {
  const a = embeddings.get(p.a), b = embeddings.get(p.b);
  // eval scores such a pair -2 (a certain non-match); it says nothing about genuine similarity.
  if (!a || !b) withoutFace++;
  else similarities.push(Math.round(cosine(a, b) * 1e4) / 1e4);
}
const out = {
  model: analyzer.embedderId,
  detector: analyzer.detectorId,
  date: new Date().toISOString(),
  command: `node --conditions=source --import tsx bench/lfw3d-genuine.ts ${process.argv.slice(2).join(' ')}`.trim(),
  pairs: pairs.length,
  pairsWithoutFace: withoutFace,
  n: similarities.length,
  similarities,
};
writeFileSync(join(here, 'lfw3d-genuine.json'), JSON.stringify(out) + '\n');
log(`lfw3d-genuine: ${similarities.length} genuine similarities (${withoutFace} pairs without a face) written`);
