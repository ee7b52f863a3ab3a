import { ModelError, type SelfTestSpec } from '@facefleet/protocol';
import type { ModelEntry } from './manifest.js';
import { openSession, ort, type Session } from './session.js';

/** Values in the sample the hub keeps of a model's self-test output. */
const SAMPLE = 256;
/** Cosine a device's self-test output must reach against the hub's (CPU kernels differ a little between machines). */
export const SELF_TEST_TOLERANCE = 0.999;

/** A deterministic input in [-1, 1] (mulberry32), the same on every machine for the same seed. */
export function selfTestInput(shape: readonly number[], seed: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** The input shape a self-test uses: the manifest's, batch 1, dynamic sides 320. */
export function selfTestShape(entry: Pick<ModelEntry, 'input'>): number[] {
  const [, c, h, w] = entry.input.shape;
  return [1, c !== undefined && c > 0 ? c : 3, h !== undefined && h > 0 ? h : 320, w !== undefined && w > 0 ? w : 320];
}

/** Run a session on the seeded input; an even sample of every output, in output-name order. */
export async function selfTestOutput(session: Session, inputName: string, shape: readonly number[], seed: number): Promise<number[]> {
  const result = await session.run({ [inputName]: new ort.Tensor('float32', selfTestInput(shape, seed), [...shape]) });
  const all: number[] = [];
  for (const name of session.outputNames) {
    const t = result[name];
    if (!t || !(t.data instanceof Float32Array)) continue;
    all.push(...t.data);
  }
  if (all.length === 0) throw new ModelError('self-test: the model gave no float output');
  const step = Math.max(1, Math.floor(all.length / SAMPLE));
  const sample: number[] = [];
  for (let i = 0; i < all.length && sample.length < SAMPLE; i += step) sample.push(Math.round(all[i]! * 1e6) / 1e6);
  return sample;
}

export function sampleCosine(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length || a.length === 0) return 0;
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  // Two all-zero samples agree.
  if (na === 0 && nb === 0) return 1;
  return dot / Math.sqrt(na * nb || 1);
}

/** The hub's side: load the file, run the seeded input, keep the sample as the expected output. */
export async function makeSelfTest(path: string, entry: Pick<ModelEntry, 'input'>, seed = 20261203): Promise<SelfTestSpec> {
  const session = await openSession(path, { threads: 1 });
  try {
    const shape = selfTestShape(entry);
    return { seed, shape, tolerance: SELF_TEST_TOLERANCE, output: await selfTestOutput(session, entry.input.name, shape, seed) };
  } finally {
    await session.release();
  }
}

/** The device's side: the same input through its own session; a reason when it does not match. */
export async function checkSelfTest(session: Session, inputName: string, spec: SelfTestSpec): Promise<{ ok: true; cosine: number } | { ok: false; reason: string }> {
  let output: number[];
  try {
    output = await selfTestOutput(session, inputName, spec.shape, spec.seed);
  } catch (err) {
    return { ok: false, reason: `self-test could not run: ${(err as Error).message.split('\n')[0] ?? ''}` };
  }
  const cosine = sampleCosine(output, spec.output);
  return cosine >= spec.tolerance ? { ok: true, cosine } : { ok: false, reason: `self-test output differs from the hub's (cosine ${cosine.toFixed(4)} < ${spec.tolerance})` };
}
