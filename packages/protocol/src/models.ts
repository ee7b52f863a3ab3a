import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';

export const MODEL_KINDS = ['detector', 'embedder', 'liveness'] as const;
export const modelKind = z.enum(MODEL_KINDS);
export type ModelKindName = z.infer<typeof modelKind>;

/**
 * A model's manifest as the hub accepts it with an upload (the same fields as an entry of the
 * project's models/manifest.json; file, sha256 and bytes come from the upload itself). `family`
 * names the pre- and post-processing the runtime applies (scrfd and yunet detectors, arcface
 * embedders, minifasnet liveness).
 */
export const modelManifest = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'letters, digits, ".", "_" and "-", up to 128'),
    kind: modelKind,
    family: z.enum(['yunet', 'scrfd', 'arcface', 'minifasnet']),
    licence: z.string().max(500).optional(),
    input: z.object({
      name: z.string().min(1),
      shape: z.array(z.number().int().min(-1)).length(4),
      colorOrder: z.enum(['RGB', 'BGR']),
      mean: z.tuple([z.number(), z.number(), z.number()]),
      std: z.tuple([z.number(), z.number(), z.number()]),
      sizeMultiple: z.number().int().positive().optional(),
    }),
    embeddingSize: z.number().int().positive().optional(),
    scoreThreshold: z.number().min(0).max(1).optional(),
    requiredFaceScoreThreshold: z.number().min(0).max(1).optional(),
    threshold: z.number().min(-1).max(1).optional(),
    cropScale: z.number().positive().optional(),
    notes: z.string().max(2000).optional(),
  })
  .refine((m) => m.kind !== 'embedder' || m.embeddingSize !== undefined, { message: 'an embedder needs embeddingSize', path: ['embeddingSize'] })
  .refine((m) => (m.kind === 'detector') === (m.family === 'yunet' || m.family === 'scrfd'), { message: 'family does not fit kind', path: ['family'] })
  .refine((m) => (m.kind === 'embedder') === (m.family === 'arcface'), { message: 'family does not fit kind', path: ['family'] });
export type ModelManifestInput = z.infer<typeof modelManifest>;

/**
 * The self-test a device runs on a model before switching to it: a fixed, seeded input of
 * `shape`; the hub ran the model on it at registration and kept an even sample of the outputs;
 * the device's sample must have a cosine of at least `tolerance` with it.
 */
export const selfTestSpec = z.object({
  seed: z.number().int(),
  shape: z.array(z.number().int().positive()).length(4),
  tolerance: z.number().min(0).max(1),
  output: z.array(z.number()).min(1).max(4096),
});
export type SelfTestSpec = z.infer<typeof selfTestSpec>;

/** Everything a device needs to fetch, check and run a model; signed by the hub's Ed25519 key. */
export const modelRef = z.object({
  id: z.string().min(1).max(128),
  kind: modelKind,
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().positive(),
  /** Where to download it (HTTP, device credentials, resumable with Range); not signed. */
  url: z.string().min(1),
  manifest: modelManifest,
  selfTest: selfTestSpec,
  keyId: z.string().min(1),
  /** base64 Ed25519 signature of modelSigningPayload(). */
  signature: z.string().min(1),
});
export type ModelRef = z.infer<typeof modelRef>;

/** JSON with object keys sorted at every level: the same value always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

type Signed = Pick<ModelRef, 'id' | 'kind' | 'sha256' | 'bytes' | 'manifest' | 'selfTest'>;

/** The bytes a model signature covers: identity, content hash, size, manifest and self-test. */
export function modelSigningPayload(ref: Signed): Buffer {
  return Buffer.from(`facefleet-model/v1\n${canonicalJson({ id: ref.id, kind: ref.kind, sha256: ref.sha256, bytes: ref.bytes, manifest: ref.manifest, selfTest: ref.selfTest })}`);
}

/** Short id of an Ed25519 public key: the first 16 hex digits of the sha256 of its DER. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

export function signModel(ref: Signed, privateKey: KeyObject): { keyId: string; signature: string } {
  return { keyId: keyIdOf(createPublicKey(privateKey)), signature: sign(null, modelSigningPayload(ref), privateKey).toString('base64') };
}

/** Checks a model reference against the trusted public keys; a reason when it does not hold. */
export function verifyModelSignature(ref: ModelRef, trusted: readonly KeyObject[]): { ok: true } | { ok: false; reason: string } {
  const key = trusted.find((k) => keyIdOf(k) === ref.keyId);
  if (!key) return { ok: false, reason: `signed with unknown key ${ref.keyId}` };
  let good = false;
  try {
    good = verify(null, modelSigningPayload(ref), key, Buffer.from(ref.signature, 'base64'));
  } catch {
    good = false;
  }
  return good ? { ok: true } : { ok: false, reason: 'bad signature' };
}

/** Device -> hub: a step of a model update on the device. */
export const modelReportMessage = z.object({
  rolloutId: z.string().nullable(),
  kind: modelKind,
  modelId: z.string(),
  state: z.enum(['downloading', 'verifying', 'testing', 'active', 'failed']),
  reason: z.string().max(2000).optional(),
  /** The model the device runs (after `active`: the new one; after `failed`: still the old one). */
  running: z.string().optional(),
  at: z.string(),
});
export type ModelReportMessage = z.infer<typeof modelReportMessage>;
