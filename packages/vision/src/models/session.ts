import * as ort from 'onnxruntime-node';
import { ModelError } from '@facefleet/protocol';

export interface SessionOptions {
  /** Threads for one inference (intra-op). Default: every core, which is what a single camera wants. */
  threads?: number;
}

export type Session = ort.InferenceSession;
export { ort };

/** Open an ONNX model on the CPU provider, turning load failures into one clear ModelError. */
export async function openSession(path: string, options: SessionOptions = {}): Promise<Session> {
  try {
    return await ort.InferenceSession.create(path, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: options.threads ?? 0,
      interOpNumThreads: 1,
      logSeverityLevel: 3,
    });
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ModelError(`cannot load model ${path}: ${msg}`, { cause: err });
  }
}
