import { FaceAnalyzer, findModel, loadManifest, type VisionConfig } from '@facefleet/vision';
import { numberFlag } from './args.js';

export interface VisionFlags {
  detector?: string | undefined;
  embedder?: string | undefined;
  threshold?: string | undefined;
  threads?: string | undefined;
  flip?: boolean | undefined;
  tile?: boolean | undefined;
  'max-pixels'?: string | undefined;
}

export interface Vision {
  analyzer: FaceAnalyzer;
  /** Cosine similarity at and above which two faces are the same person. */
  threshold: number;
}

/** Open the pipeline from flags, env (FACEFLEET_DETECTOR, FACEFLEET_EMBEDDER) and the manifest defaults. */
export async function openVision(flags: VisionFlags, extra: Partial<VisionConfig> = {}): Promise<Vision> {
  const manifest = loadManifest();
  const embedderId = flags.embedder ?? env('FACEFLEET_EMBEDDER') ?? manifest.defaults.embedder;
  const detectorId = flags.detector ?? env('FACEFLEET_DETECTOR') ?? manifest.defaults.detector;
  const entry = findModel(embedderId, manifest);
  const threads = numberFlag(flags.threads, 'threads', { min: 0, max: 256 });
  const maxPixels = numberFlag(flags['max-pixels'], 'max-pixels', { min: 1 });
  const config: VisionConfig = { detector: detectorId, embedder: embedderId, flip: flags.flip === true, ...extra };
  if (flags.tile === true) config.detect = { ...config.detect, tile: true };
  if (threads !== undefined) config.threads = threads;
  if (maxPixels !== undefined) config.maxPixels = maxPixels;
  const analyzer = await FaceAnalyzer.open(config);
  const threshold = numberFlag(flags.threshold, 'threshold', { min: -1, max: 1 }) ?? entry.threshold ?? 0.3;
  return { analyzer, threshold };
}

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

export const round = (v: number, digits = 4): number => Math.round(v * 10 ** digits) / 10 ** digits;
