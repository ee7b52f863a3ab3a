import { assignUnique, decide, type GalleryStore } from '@facefleet/gallery';
import type { AnalysedFace, FaceAnalyzer, RgbImage } from '@facefleet/vision';

export interface IdentifiedFace {
  face: AnalysedFace;
  /** Subject name, or null for an unknown face. */
  subject: string | null;
  similarity: number;
  candidates: { subject: string; similarity: number }[];
}

/** Every face of an image against a gallery: open-set, one subject per face and per frame. */
export async function identifyImage(
  analyzer: FaceAnalyzer,
  gallery: GalleryStore,
  image: RgbImage,
  threshold: number,
  top = 5,
): Promise<IdentifiedFace[]> {
  const faces = await analyzer.analyse(image);
  const decisions = assignUnique(
    faces.map((f) => decide(gallery.search(f.embedding.modelId, f.embedding.vector, top), threshold, top)),
    threshold,
  );
  const named = (id: string): string => gallery.subjectName(id) ?? id;
  return faces.map((face, i) => {
    const d = decisions[i]!;
    return {
      face,
      subject: d.kind === 'match' ? named(d.subjectId) : null,
      similarity: d.similarity,
      candidates: d.candidates.map((c) => ({ subject: named(c.subjectId), similarity: c.similarity })),
    };
  });
}
