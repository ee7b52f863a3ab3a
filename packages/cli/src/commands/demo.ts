import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { NotFoundError } from '@facefleet/protocol';
import { GalleryStore } from '@facefleet/gallery';
import { projectRoot, type RgbImage } from '@facefleet/vision';
import { parse, UsageError, VISION_OPTIONS } from '../args.js';
import { openVision } from '../context.js';
import { dataDir, fetchDemoData } from '../data.js';
import { writeAnnotated } from '../annotate.js';
import { table, type Io } from '../output.js';
import { identifyImage } from '../recognize.js';
import { fleetDemo } from './fleet-demo.js';

const USAGE = 'facefleet demo [--out <dir>] [--data <dir>] [--video <file>] [--no-fleet] [--keep-running]';

/**
 * The first thing a new user runs: enrol the eight faceapi_bbt people, then name every face in
 * the bbt group photos and in frames of a demo video; print a table, write annotated images.
 */
export async function demoCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parse(argv, { ...VISION_OPTIONS, out: { type: 'string' }, data: { type: 'string' }, video: { type: 'string' }, 'no-fleet': { type: 'boolean' }, 'keep-running': { type: 'boolean' } }, USAGE);
  const data = values.data ?? dataDir();
  if (!existsSync(join(data, 'faceapi_bbt'))) {
    io.err(`demo: sample data not found in ${data}; fetching it from upstream`);
    await fetchDemoData(data, io.err);
  }
  const out = values.out ?? join(projectRoot(), 'out', 'demo');
  await mkdir(out, { recursive: true });
  const galleryPath = join(out, 'gallery.db');
  for (const suffix of ['', '-wal', '-shm']) await rm(galleryPath + suffix, { force: true });

  const { analyzer, threshold } = await openVision(values);
  const gallery = GalleryStore.open(galleryPath);
  const rows: (string | number)[][] = [['image', 'face', 'subject', 'similarity', 'box']];
  try {
    const people = join(data, 'faceapi_bbt', 'identities');
    if (!existsSync(people)) throw new NotFoundError(`${people} is missing`);
    let enrolled = 0;
    for (const name of readdirSync(people).sort()) {
      const subject = gallery.ensureSubject(name);
      for (const file of readdirSync(join(people, name)).sort()) {
        const faces = await analyzer.analyse(await analyzer.decode(join(people, name, file)));
        const face = faces[0];
        if (!face) {
          io.err(`demo: ${name}/${file}: no face, skipped`);
          continue;
        }
        gallery.addTemplate(subject.id, { modelId: face.embedding.modelId, vector: face.embedding.vector, quality: face.quality.score });
        enrolled++;
      }
    }
    io.out(`Enrolled ${gallery.listSubjects().length} people (${enrolled} photos) into ${relative(process.cwd(), galleryPath)} with ${analyzer.embedderId}; threshold ${threshold}\n`);

    const identify = async (label: string, image: RgbImage, annotated: string): Promise<void> => {
      const results = await identifyImage(analyzer, gallery, image, threshold);
      results.forEach((r, i) => {
        const b = r.face.box;
        rows.push([label, i + 1, r.subject ?? '(unknown)', r.similarity.toFixed(3), `${b.x.toFixed(0)},${b.y.toFixed(0)} ${b.width.toFixed(0)}x${b.height.toFixed(0)}`]);
      });
      if (results.length === 0) rows.push([label, '-', '(no face)', '', '']);
      await writeAnnotated(image, results.map((r) => ({ box: r.face.box, text: r.subject ?? `unknown ${r.similarity.toFixed(2)}`, known: r.subject !== null })), annotated);
    };

    const group = join(data, 'edge_demo', 'group');
    for (const file of readdirSync(group).filter((f) => /^bbt\d+\.jpg$/.test(f)).sort()) {
      await identify(file, await analyzer.decode(join(group, file)), join(out, file));
    }
    const video = values.video ?? join(data, 'edge_demo', 'video', 'faceapi_test_video.mp4');
    const frames = await extractFrames(video, io);
    if (frames) {
      try {
        for (const f of frames.files) await identify(`${basename(video)}#${basename(f, '.png')}`, await analyzer.decode(f), join(out, `${basename(video, '.mp4')}-${basename(f, '.png')}.jpg`));
      } finally {
        await rm(frames.dir, { recursive: true, force: true });
      }
    }
    io.out(table(rows));
    io.out(`\nAnnotated images: ${relative(process.cwd(), out) || '.'}/`);
  } finally {
    gallery.close();
    await analyzer.close();
  }
  if (values['no-fleet'] !== true) await fleetDemo(data, out, io, values['keep-running'] ?? (process.stdout.isTTY && process.stdin.isTTY));
  return 0;
}

/** Every 12th frame of a video (frame 0 first), via ffmpeg; undefined (with a note) when ffmpeg is absent. */
async function extractFrames(video: string, io: Io): Promise<{ dir: string; files: string[] } | undefined> {
  if (!existsSync(video)) {
    io.err(`demo: ${video} not found; skipping the video part`);
    return undefined;
  }
  const dir = await mkdtemp(join(tmpdir(), 'facefleet-demo-'));
  const run = spawnSync('ffmpeg', ['-v', 'error', '-i', video, '-vf', 'select=not(mod(n\\,12))', '-vsync', 'vfr', join(dir, 'frame%03d.png')], { encoding: 'utf8' });
  if (run.error || run.status !== 0) {
    io.err(`demo: cannot read frames of ${video} (${run.error ? 'ffmpeg not installed: apt-get install ffmpeg' : run.stderr.split('\n')[0]}); skipping the video part`);
    await rm(dir, { recursive: true, force: true });
    return undefined;
  }
  return { dir, files: readdirSync(dir).sort().map((f) => join(dir, f)) };
}

export async function dataCommand(argv: string[], io: Io): Promise<number> {
  const usage = 'facefleet data fetch [--to <dir>]';
  const [verb, ...rest] = argv;
  if (verb !== 'fetch') throw new UsageError(`unknown data verb "${verb ?? ''}"\nusage: ${usage}`);
  const { values } = parse(rest, { to: { type: 'string' } }, usage);
  const target = values.to ?? join(projectRoot(), '.data');
  await fetchDemoData(target, io.err);
  io.err(`data: demo files verified in ${target}`);
  return 0;
}
