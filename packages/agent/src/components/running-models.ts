import { basename } from 'node:path';
import type { ModelRef } from '@facefleet/protocol';
import { FaceAnalyzer, findModel, loadManifest, modelFile, type ModelEntry } from '@facefleet/vision';
import { sha256File, type ModelFiles } from '../adapters/model-files.js';
import { UPDATABLE_KINDS, type AssignedRefs, type UpdatableKind } from '../adapters/model-state.js';
import type { AgentConfig } from '../config.js';

/** The model running for one kind: hub-assigned (`ref`) or the agent's own (configured or default). */
export interface RunningModel {
  kind: UpdatableKind;
  id: string;
  sha256: string;
  path: string;
  entry: ModelEntry;
  ref?: ModelRef;
}

export type RunningModels = Record<UpdatableKind, RunningModel>;

/** The agent's own model of a kind: `recognition.<kind>` in its config, else the manifest's default. */
export function ownModel(kind: UpdatableKind, config: AgentConfig): RunningModel {
  const id = config.recognition[kind] ?? loadManifest().defaults[kind];
  const entry = findModel(id);
  return { kind, id: entry.id, sha256: entry.sha256, path: modelFile(entry), entry };
}

/** A hub-assigned model as the vision package opens it: the reference's manifest plus its file. */
export function assignedModel(ref: ModelRef, path: string): RunningModel {
  const entry: ModelEntry = {
    ...ref.manifest,
    id: ref.id,
    file: basename(path),
    sha256: ref.sha256,
    bytes: ref.bytes,
    licence: ref.manifest.licence ?? 'not stated',
    sources: [{ url: ref.url }],
  };
  return { kind: ref.kind as UpdatableKind, id: ref.id, sha256: ref.sha256, path, entry, ref };
}

/**
 * The models to open at start: those recorded in `models.active` when their files are there and
 * still hash to their sha256, else the agent's own (each fallback is said in the log).
 */
export async function startModels(
  config: AgentConfig,
  active: AssignedRefs,
  files: ModelFiles,
  log: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void },
): Promise<RunningModels> {
  const out = {} as RunningModels;
  for (const kind of UPDATABLE_KINDS) {
    const ref = active[kind];
    const path = ref ? files.find(ref.sha256) : undefined;
    if (ref && path !== undefined && (await sha256File(path).catch(() => '')) === ref.sha256) {
      out[kind] = assignedModel(ref, path);
      log.info({ kind, model: ref.id, sha256: ref.sha256 }, 'running the hub-assigned model recorded in models.active');
      continue;
    }
    out[kind] = ownModel(kind, config);
    if (ref) log.warn({ kind, model: ref.id, sha256: ref.sha256, fallback: out[kind].id }, `the ${kind} in models.active is missing or does not match its sha256: running the configured model instead`);
  }
  return out;
}

/** Open an analyzer on exactly these model files, with the agent's recognition settings. */
export function openAnalyzer(models: RunningModels, config: AgentConfig): Promise<FaceAnalyzer> {
  const r = config.recognition;
  return FaceAnalyzer.open({
    files: { detector: { entry: models.detector.entry, path: models.detector.path }, embedder: { entry: models.embedder.entry, path: models.embedder.path } },
    threads: r.threads,
    liveness: r.liveness,
    detect: { inputSize: r.inputSize, tile: r.tile },
  });
}

/**
 * The match threshold for an embedder. A hub-assigned embedder's manifest threshold wins (a
 * configured threshold was chosen for another model's similarity scale); the agent's own embedder
 * takes `recognition.threshold`, then its manifest's.
 */
export function thresholdFor(embedder: RunningModel, config: AgentConfig): number {
  if (embedder.ref) return embedder.ref.manifest.threshold ?? config.recognition.threshold ?? 0.3;
  return config.recognition.threshold ?? embedder.entry.threshold ?? 0.3;
}
