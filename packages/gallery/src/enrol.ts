import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { DecodeError } from '@facefleet/protocol';
import type { FaceAnalyzer } from '@facefleet/vision';
import type { GalleryStore } from './store/gallery-store.js';

export type EnrolStatus = 'ok' | 'duplicate' | 'noFace' | 'unreadable';

export interface EnrolResult {
  file: string;
  status: EnrolStatus;
  reason?: string;
  faces?: number;
}

/**
 * Enrol image files as templates of one subject: the largest face of each (saying so when
 * there were several); faceless or unreadable files are reported and skipped; an image already
 * enrolled for the subject (same bytes) adds nothing.
 */
export async function enrolFiles(analyzer: FaceAnalyzer, gallery: GalleryStore, name: string, files: readonly string[]): Promise<{ subjectId: string; results: EnrolResult[] }> {
  gallery.assertModel(analyzer.embedderId);
  const subject = gallery.ensureSubject(name);
  const results: EnrolResult[] = [];
  for (const file of files) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (err) {
      results.push({ file, status: 'unreadable', reason: (err as NodeJS.ErrnoException).code ?? 'cannot read' });
      continue;
    }
    let image;
    let faces;
    try {
      image = await analyzer.decode(bytes);
      faces = await analyzer.detect(image);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      results.push({ file, status: 'unreadable', reason: err.message });
      continue;
    }
    const largest = faces[0] ?? (await analyzer.largestFace(image));
    if (!largest) {
      results.push({ file, status: 'noFace', reason: 'no face found' });
      continue;
    }
    const [face] = await analyzer.embed([largest]);
    const added = gallery.addTemplate(subject.id, {
      modelId: face!.embedding.modelId,
      vector: face!.embedding.vector,
      sourceSha256: createHash('sha256').update(bytes).digest('hex'),
      quality: face!.quality.score,
    });
    const entry: EnrolResult = { file, status: added.added ? 'ok' : 'duplicate', faces: Math.max(1, faces.length) };
    if (faces.length > 1) entry.reason = `${faces.length} faces found; enrolled the largest`;
    if (!added.added) entry.reason = 'this image is already enrolled for this subject';
    results.push(entry);
  }
  return { subjectId: subject.id, results };
}
