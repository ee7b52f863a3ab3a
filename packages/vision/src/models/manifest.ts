import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, ModelError } from '@facefleet/protocol';

export type ModelKind = 'detector' | 'embedder' | 'liveness';
export type ModelFamily = 'yunet' | 'scrfd' | 'arcface' | 'minifasnet';

export type ModelSource = { url: string } | { npm: { package: string; version: string; path: string } };

export interface ModelInputSpec {
  name: string;
  /** -1 for a dynamic axis. */
  shape: number[];
  colorOrder: 'RGB' | 'BGR';
  mean: [number, number, number];
  std: [number, number, number];
  sizeMultiple?: number;
}

export interface ModelEntry {
  id: string;
  kind: ModelKind;
  family: ModelFamily;
  file: string;
  sha256: string;
  bytes: number;
  licence: string;
  sources: ModelSource[];
  input: ModelInputSpec;
  embeddingSize?: number;
  /** Detectors: default minimum score (scores are not calibrated across families). */
  scoreThreshold?: number;
  /**
   * Detectors: the lower score accepted when the caller states the image shows a face (verify,
   * enrol): with a face known to be there, the largest candidate is worth taking.
   */
  requiredFaceScoreThreshold?: number;
  /** Embedders: default cosine threshold for "same person" (how it was chosen: README). */
  threshold?: number;
  /** MiniFASNet: the detector box is scaled by this about its centre before cropping. */
  cropScale?: number;
  notes?: string;
  /** Built here from another model rather than downloaded (its sha256 still pins the result). */
  derivedFrom?: { model: string; transform: 'dequantize' };
}

export interface ModelManifest {
  version: 1;
  defaults: { detector: string; embedder: string; liveness: string[] };
  models: ModelEntry[];
}

/** The repository root: the nearest ancestor holding models/manifest.json. */
export function projectRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'models', 'manifest.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new ModelError('cannot find models/manifest.json above ' + from);
    dir = up;
  }
}

export function manifestPath(): string {
  return process.env.FACEFLEET_MODELS_MANIFEST ?? join(projectRoot(), 'models', 'manifest.json');
}

/** Where fetched model files live: FACEFLEET_MODELS_DIR, else the ignored models/files of the repo. */
export function modelsDir(): string {
  const env = process.env.FACEFLEET_MODELS_DIR;
  return env !== undefined && env !== '' ? resolve(env) : join(projectRoot(), 'models', 'files');
}

let cached: { path: string; manifest: ModelManifest } | undefined;

export function loadManifest(path = manifestPath()): ModelManifest {
  if (cached?.path === path) return cached.manifest;
  let parsed: ModelManifest;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as ModelManifest;
  } catch (err) {
    throw new ModelError(`cannot read model manifest ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (parsed.version !== 1 || !Array.isArray(parsed.models)) throw new ModelError(`model manifest ${path} is not version 1`);
  cached = { path, manifest: parsed };
  return parsed;
}

export function findModel(id: string, manifest = loadManifest()): ModelEntry {
  const entry = manifest.models.find((m) => m.id === id);
  if (!entry) {
    throw new ConfigError(`unknown model "${id}" (known: ${manifest.models.map((m) => m.id).join(', ')})`);
  }
  return entry;
}

/** Absolute path of a model's file; throws a ModelError naming the fetch command when absent. */
export function modelFile(entry: ModelEntry, dir = modelsDir()): string {
  const path = join(dir, entry.file);
  if (!existsSync(path)) {
    throw new ModelError(`model ${entry.id} is missing: ${path} (run: pnpm exec facefleet models fetch)`);
  }
  return path;
}
