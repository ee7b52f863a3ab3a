import { ConfigError, ModelError } from '@facefleet/protocol';
import { alignFace } from './align/similarity.js';
import { detectFaces, type DetectOptions } from './detect/runner.js';
import { ScrfdDetector } from './detect/scrfd.js';
import type { Detection, DetectorModel } from './detect/types.js';
import { YuNetDetector } from './detect/yunet.js';
import { Embedder, type Embedding } from './embed/embedder.js';
import { decodeImage, type DecodedImage } from './image/decode.js';
import type { RgbImage } from './image/raster.js';
import { livenessScore, type LivenessModel } from './liveness/minifasnet.js';
import { findModel, loadManifest, modelFile, type ModelEntry } from './models/manifest.js';
import { openSession } from './models/session.js';
import { timedSession, type StageTimes } from './models/timing.js';
import { faceQuality, type FaceQuality } from './quality/quality.js';

export interface VisionConfig {
  /** Detector model id (default: the manifest's default). */
  detector?: string;
  /** Embedder model id (default: the manifest's default). */
  embedder?: string;
  /** Load the liveness models (default false: they cost ~2 ms a face and are needed only at gates). */
  liveness?: boolean;
  /** Fuse the embedding of the mirrored face (default false: measured no gain on LFW3D). */
  flip?: boolean;
  /** onnxruntime intra-op threads (default: all cores). */
  threads?: number;
  detect?: DetectOptions;
  /** Pixel limit for decoding. */
  maxPixels?: number;
  /** Folder of model files (default modelsDir()). */
  modelsDir?: string;
  /** Collects per-stage wall time (decode, detect, align, embed and the raw model runs). */
  times?: StageTimes;
  /** Models from files outside the manifest (fleet updates): their manifest entry and file; these win over `detector`/`embedder`. */
  files?: { detector?: ModelFile; embedder?: ModelFile };
}

export interface ModelFile {
  entry: ModelEntry;
  path: string;
}

export interface DetectedFace extends Detection {
  quality: FaceQuality;
  /** The face warped onto the 112x112 ArcFace template. */
  aligned: RgbImage;
}

export interface AnalysedFace extends DetectedFace {
  embedding: Embedding;
}

/**
 * The recognition pipeline on one process: decode -> detect -> align -> (quality) -> embed.
 * Knows nothing of storage or transport. Open once, reuse for every image, close at the end.
 */
export class FaceAnalyzer {
  private constructor(
    readonly detectorId: string,
    private readonly detector: DetectorModel,
    readonly embedder: Embedder,
    private readonly livenessModels: LivenessModel[],
    private readonly config: VisionConfig,
    private readonly detectOptions: DetectOptions,
    private readonly requiredFaceScore: number | undefined,
  ) {}

  static async open(config: VisionConfig = {}): Promise<FaceAnalyzer> {
    const manifest = loadManifest();
    const det = config.files?.detector?.entry ?? findModel(config.detector ?? manifest.defaults.detector, manifest);
    const emb = config.files?.embedder?.entry ?? findModel(config.embedder ?? manifest.defaults.embedder, manifest);
    if (det.kind !== 'detector') throw new ConfigError(`model ${det.id} is of kind ${det.kind}, not a detector`);
    if (emb.kind !== 'embedder') throw new ConfigError(`model ${emb.id} is of kind ${emb.kind}, not an embedder`);
    const threads = config.threads !== undefined ? { threads: config.threads } : {};
    const detector = await openDetector(det, config.files?.detector?.path ?? modelFile(det, config.modelsDir), threads, config.times);
    let embedder: Embedder;
    try {
      embedder = await openEmbedder(emb, config.files?.embedder?.path ?? modelFile(emb, config.modelsDir), config, threads);
    } catch (err) {
      await detector.dispose();
      throw err;
    }
    const liveness: LivenessModel[] = [];
    if (config.liveness === true) {
      for (const id of manifest.defaults.liveness) {
        const entry = findModel(id, manifest);
        liveness.push({ session: await openSession(modelFile(entry, config.modelsDir), threads), cropScale: entry.cropScale ?? 2.7 });
      }
    }
    const detectOptions: DetectOptions = { ...config.detect };
    if (detectOptions.scoreThreshold === undefined && det.scoreThreshold !== undefined) detectOptions.scoreThreshold = det.scoreThreshold;
    const required = Math.min(detectOptions.scoreThreshold ?? 1, det.requiredFaceScoreThreshold ?? 1);
    return new FaceAnalyzer(det.id, detector, embedder, liveness, config, detectOptions, required);
  }

  get embedderId(): string {
    return this.embedder.modelId;
  }

  decode(input: Uint8Array | string): Promise<DecodedImage> {
    return this.timed('decode', () => decodeImage(input, this.config.maxPixels !== undefined ? { maxPixels: this.config.maxPixels } : {}));
  }

  private timed<T>(stage: string, work: () => Promise<T>): Promise<T> {
    return this.config.times ? this.config.times.time(stage, work) : work();
  }

  /** Every face, largest first, with landmarks, quality and the aligned crop. */
  async detect(image: RgbImage): Promise<DetectedFace[]> {
    return this.detectWith(image, this.detectOptions);
  }

  /**
   * The largest face of an image the caller says shows one (verify, enrol): detection runs at the
   * detector's lower `requiredFaceScoreThreshold`. Undefined when there is still none.
   */
  async largestFace(image: RgbImage): Promise<DetectedFace | undefined> {
    const faces = await this.detectWith(image, { ...this.detectOptions, scoreThreshold: this.requiredFaceScore });
    return faces[0];
  }

  private async detectWith(image: RgbImage, options: DetectOptions): Promise<DetectedFace[]> {
    const dets = await this.timed('detect', () => detectFaces(this.detector, image, options));
    return this.timed('align', () =>
      Promise.resolve(
        dets
          .map((d) => {
            const aligned = alignFace(image, d.landmarks);
            return { ...d, aligned, quality: faceQuality(d, aligned) };
          })
          .sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height),
      ),
    );
  }

  /** Embed faces (batched). */
  async embed(faces: readonly DetectedFace[]): Promise<AnalysedFace[]> {
    if (faces.length === 0) return [];
    const embeddings = await this.timed('embed', () => this.embedder.embed(faces.map((f) => f.aligned)));
    return faces.map((f, i) => ({ ...f, embedding: embeddings[i]! }));
  }

  async analyse(image: RgbImage): Promise<AnalysedFace[]> {
    return this.embed(await this.detect(image));
  }

  /** Probability that the face is live (not a photo or screen); needs `liveness: true`. */
  async liveness(image: RgbImage, face: Detection): Promise<number> {
    if (this.livenessModels.length === 0) throw new ModelError('liveness models are not loaded (open with liveness: true)');
    return livenessScore(this.livenessModels, image, face.box);
  }

  async close(): Promise<void> {
    await this.detector.dispose();
    await this.embedder.dispose();
    for (const m of this.livenessModels) await m.session.release();
  }
}

async function openDetector(entry: ModelEntry, path: string, opts: { threads?: number }, times?: StageTimes): Promise<DetectorModel> {
  const session = timedSession(await openSession(path, opts), times, 'detectorModel');
  const [, , h, w] = entry.input.shape;
  const fixed = h !== undefined && w !== undefined && h > 0 && w > 0 ? ([w, h] as const) : undefined;
  switch (entry.family) {
    case 'yunet':
      return new YuNetDetector(entry.id, session, fixed);
    case 'scrfd':
      return new ScrfdDetector(entry.id, session);
    case 'arcface':
    case 'minifasnet':
      await session.release();
      throw new ModelError(`model ${entry.id}: family ${entry.family} is not a detector`);
  }
}

async function openEmbedder(entry: ModelEntry, path: string, config: VisionConfig, opts: { threads?: number }): Promise<Embedder> {
  const session = timedSession(await openSession(path, opts), config.times, 'embedderModel');
  const size = entry.input.shape[2] ?? 112;
  const dynamicBatch = (entry.input.shape[0] ?? 1) < 0;
  return new Embedder(entry.id, session, entry.input, size, dynamicBatch, config.flip !== undefined ? { flip: config.flip } : {});
}
