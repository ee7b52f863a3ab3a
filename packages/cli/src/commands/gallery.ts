import { enrolFiles, GalleryStore } from '@facefleet/gallery';
import { parse, required, UsageError, VISION_OPTIONS } from '../args.js';
import { openVision, round } from '../context.js';
import { boxJson, table, type Io } from '../output.js';
import { withFile } from './detect.js';
import { identifyImage } from '../recognize.js';

const ENROLL = 'facefleet enroll --gallery <file.db> --subject <name> <image...> [--json]';
const IDENTIFY = 'facefleet identify --gallery <file.db> <image> [--json] [--top <k>]';

export async function enrollCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { ...VISION_OPTIONS, gallery: { type: 'string' }, subject: { type: 'string' } }, ENROLL);
  const galleryPath = required(values.gallery, 'gallery', ENROLL);
  const name = required(values.subject, 'subject', ENROLL);
  if (positionals.length === 0) throw new UsageError(`enroll needs at least one image\nusage: ${ENROLL}`);
  const { analyzer } = await openVision(values);
  const gallery = GalleryStore.open(galleryPath);
  try {
    const { results } = await enrolFiles(analyzer, gallery, name, positionals);
    const subject = gallery.subjectByName(name)!;
    const enrolled = results.filter((r) => r.status === 'ok').length;
    const templates = subject.templates;
    if (values.json === true) {
      io.out(JSON.stringify({ subject: { id: subject.id, name: subject.name, templates }, enrolled, results }));
    } else {
      for (const r of results) {
        const line = `${r.file}: ${r.status}${r.reason !== undefined ? ` (${r.reason})` : ''}`;
        if (r.status === 'ok' || r.status === 'duplicate') io.out(line);
        else io.err(line);
      }
      io.out(`${subject.name}: ${enrolled} new template${enrolled === 1 ? '' : 's'}, ${templates} in all`);
    }
    // Nothing usable at all is the caller's error; partial success is success.
    return results.some((r) => r.status === 'ok' || r.status === 'duplicate') ? 0 : 2;
  } finally {
    gallery.close();
    await analyzer.close();
  }
}

export async function identifyCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { ...VISION_OPTIONS, gallery: { type: 'string' }, top: { type: 'string' } }, IDENTIFY);
  const galleryPath = required(values.gallery, 'gallery', IDENTIFY);
  if (positionals.length !== 1) throw new UsageError(`identify takes one image\nusage: ${IDENTIFY}`);
  const file = positionals[0]!;
  const top = Math.max(1, Math.floor(Number(values.top ?? 5)) || 5);
  const gallery = GalleryStore.open(galleryPath, { mustExist: true });
  const { analyzer, threshold } = await openVision(values);
  try {
    gallery.assertModel(analyzer.embedderId);
    const image = await withFile(file, analyzer.decode(file));
    const out = (await identifyImage(analyzer, gallery, image, threshold, top)).map((r) => ({
      box: boxJson(r.face.box),
      subject: r.subject,
      similarity: round(r.similarity),
      candidates: r.candidates.map((c) => ({ subject: c.subject, similarity: round(c.similarity) })),
      score: round(r.face.score),
      quality: r.face.quality.score,
    }));
    if (values.json === true) io.out(JSON.stringify({ faces: out, threshold, model: analyzer.embedderId }));
    else {
      io.out(`${file}: ${out.length} face${out.length === 1 ? '' : 's'}`);
      if (out.length > 0) {
        io.out(table([['#', 'box', 'subject', 'similarity'], ...out.map((f, i) => [i + 1, `${f.box.x.toFixed(0)},${f.box.y.toFixed(0)} ${f.box.width.toFixed(0)}x${f.box.height.toFixed(0)}`, f.subject ?? '(unknown)', f.similarity.toFixed(3)])]));
      }
    }
    return 0;
  } finally {
    gallery.close();
    await analyzer.close();
  }
}

export function subjectsCommand(argv: string[], io: Io): number {
  const usage = 'facefleet subjects --gallery <file.db> [--json]';
  const { values } = parse(argv, { gallery: { type: 'string' }, json: { type: 'boolean' } }, usage);
  const gallery = GalleryStore.open(required(values.gallery, 'gallery', usage), { mustExist: true });
  try {
    const subjects = gallery.listSubjects().map((s) => ({ id: s.id, name: s.name, templates: s.templates, createdAt: s.createdAt }));
    if (values.json === true) io.out(JSON.stringify({ subjects, models: gallery.modelIds() }));
    else if (subjects.length === 0) io.out('no subjects');
    else io.out(table([['name', 'templates'], ...subjects.map((s) => [s.name, s.templates])]));
    return 0;
  } finally {
    gallery.close();
  }
}

export function forgetCommand(argv: string[], io: Io): number {
  const usage = 'facefleet forget --gallery <file.db> --subject <name> [--json]';
  const { values } = parse(argv, { gallery: { type: 'string' }, subject: { type: 'string' }, json: { type: 'boolean' } }, usage);
  const name = required(values.subject, 'subject', usage);
  const gallery = GalleryStore.open(required(values.gallery, 'gallery', usage), { mustExist: true });
  try {
    const removed = gallery.forget(name);
    io.out(values.json === true ? JSON.stringify({ subject: name, removedTemplates: removed }) : `forgot ${name} (${removed} template${removed === 1 ? '' : 's'} erased)`);
    return 0;
  } finally {
    gallery.close();
  }
}
