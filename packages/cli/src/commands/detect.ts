import { parse, UsageError, VISION_OPTIONS } from '../args.js';
import { openVision } from '../context.js';
import { faceJson, table, type Io } from '../output.js';

const USAGE = 'facefleet detect <image> [--json] [--detector <id>] [--liveness]';

export async function detectCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { ...VISION_OPTIONS, liveness: { type: 'boolean' } }, USAGE);
  if (positionals.length !== 1) throw new UsageError(`detect takes one image\nusage: ${USAGE}`);
  const file = positionals[0]!;
  const { analyzer } = await openVision(values, { liveness: values.liveness === true });
  try {
    const image = await withFile(file, analyzer.decode(file));
    const faces = await analyzer.detect(image);
    const out = [];
    for (const f of faces) {
      const json = faceJson(f);
      if (values.liveness === true) json.liveness = Math.round((await analyzer.liveness(image, f)) * 1000) / 1000;
      out.push(json);
    }
    if (values.json === true) {
      io.out(JSON.stringify({ image: { width: image.width, height: image.height }, faces: out }));
    } else {
      io.out(`${file}: ${image.width}x${image.height}, ${faces.length} face${faces.length === 1 ? '' : 's'}`);
      if (faces.length > 0) {
        io.out(table([
          ['#', 'x', 'y', 'width', 'height', 'score', 'quality'],
          ...faces.map((f, i) => [i + 1, ...[f.box.x, f.box.y, f.box.width, f.box.height].map((v) => v.toFixed(0)), f.score.toFixed(3), f.quality.score.toFixed(2)]),
        ]));
      }
    }
    return 0;
  } finally {
    await analyzer.close();
  }
}

/** Attach the file name to any error from work on that file. */
export async function withFile<T>(file: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof Error && !err.message.startsWith(file)) err.message = `${file}: ${err.message}`;
    throw err;
  }
}
