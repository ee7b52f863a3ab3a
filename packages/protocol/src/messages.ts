import { z } from 'zod';
import { modelRef } from './models.js';

/** A recognition event as it travels device -> hub. Ids are UUIDs made on the device. */
export const eventMessage = z.object({
  id: z.string().min(8).max(64),
  deviceId: z.string().min(1),
  type: z.enum(['recognition', 'unknown']),
  subjectId: z.string().nullable(),
  subject: z.string().nullable(),
  similarity: z.number().min(-1).max(1),
  at: z.string().datetime({ offset: true }),
  trackId: z.string().optional(),
  source: z.string().optional(),
  modelId: z.string(),
  faces: z.number().int().min(1).optional(),
  quality: z.number().min(0).max(1).optional(),
});
export type EventMessage = z.infer<typeof eventMessage>;

export const ackMessage = z.object({ ids: z.array(z.string()).min(1).max(10_000) });
export type AckMessage = z.infer<typeof ackMessage>;

export const stateMessage = z.object({
  online: z.boolean(),
  at: z.string(),
  agentVersion: z.string().optional(),
});
export type StateMessage = z.infer<typeof stateMessage>;

export const statusMessage = z.object({
  at: z.string(),
  agentVersion: z.string(),
  models: z.object({ detector: z.string(), embedder: z.string() }),
  galleries: z.record(z.string(), z.number().int().min(0)),
  outboxDepth: z.number().int().min(0),
  counters: z.record(z.string(), z.number()),
});
export type StatusMessage = z.infer<typeof statusMessage>;

/**
 * Parse and validate an inbound payload. Returns a value or a reason: invalid input from the
 * network is logged and dropped by the caller, never thrown through a daemon.
 */
export function parseMessage<T>(schema: z.ZodType<T>, payload: Buffer | string): { ok: true; value: T } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'payload is not JSON' };
  }
  const r = schema.safeParse(json);
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0];
  return { ok: false, reason: issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid payload' };
}

/**
 * Device -> hub: "send me what changed since these sequences" (0 = nothing yet). `resume` asks for
 * the next part of a snapshot the device is part-way through (snapshots travel one part per request,
 * so a slow link holds one part in flight and a restart resumes where it stopped).
 */
export const syncRequestMessage = z.object({
  galleries: z.record(z.string(), z.number().int().min(0)),
  resume: z.record(z.string(), z.object({ toSeq: z.number().int().min(0), part: z.number().int().min(0) })).optional(),
});
export type SyncRequestMessage = z.infer<typeof syncRequestMessage>;

export const templateWire = z.object({ id: z.string(), modelId: z.string(), vector: z.string() });

export const galleryChange = z.discriminatedUnion('op', [
  z.object({ op: z.literal('upsert'), subjectId: z.string(), name: z.string(), templates: z.array(templateWire) }),
  z.object({ op: z.literal('delete'), subjectId: z.string() }),
]);
export type GalleryChange = z.infer<typeof galleryChange>;

/**
 * Hub -> device: the changes of one gallery from `fromSeq` (exclusive) to `toSeq`, each change
 * already resolved to the subject's current state; `snapshot` replaces the gallery wholesale.
 * A large snapshot comes in parts (`part`); the device stages them and applies the whole at once.
 */
export const syncChangesMessage = z
  .object({
    galleryId: z.string(),
    fromSeq: z.number().int().min(0),
    toSeq: z.number().int().min(0),
    snapshot: z.boolean(),
    changes: z.array(galleryChange),
    part: z.object({ index: z.number().int().min(0), count: z.number().int().min(1) }).optional(),
  })
  .refine((m) => m.part === undefined || (m.snapshot && m.part.index < m.part.count), { message: 'part must be of a snapshot, with index < count', path: ['part'] });
export type SyncChangesMessage = z.infer<typeof syncChangesMessage>;

/**
 * Hub -> device, retained: what the device is assigned: galleries, and the models it should run
 * (absent: keep what it runs). `rollouts` names, per kind, the rollout that assigned that model, for
 * the device's reports (a detector and an embedder can come from two rollouts at once); `rolloutId`
 * is the single id older agents read.
 */
export const deviceConfigMessage = z.object({
  galleries: z.array(z.string()),
  models: z.object({ detector: modelRef.optional(), embedder: modelRef.optional() }).optional(),
  rolloutId: z.string().nullable().optional(),
  rollouts: z.object({ detector: z.string().nullable().optional(), embedder: z.string().nullable().optional() }).optional(),
  /** The hub's Ed25519 public key (PEM) that signs models; an agent without a configured key pins the first it sees. */
  signingKey: z.string().optional(),
});
export type DeviceConfigMessage = z.infer<typeof deviceConfigMessage>;

/** Hub -> devices, retained: a gallery's head sequence. */
export const galleryHeadMessage = z.object({ galleryId: z.string(), seq: z.number().int().min(0) });
export type GalleryHeadMessage = z.infer<typeof galleryHeadMessage>;
