import { parseArgs, type ParseArgsConfig } from 'node:util';

type Parsed<T extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>>;
import { FacefleetError } from '@facefleet/protocol';

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Flags every vision command takes. */
export const VISION_OPTIONS = {
  json: { type: 'boolean' },
  detector: { type: 'string' },
  embedder: { type: 'string' },
  threshold: { type: 'string' },
  threads: { type: 'string' },
  flip: { type: 'boolean' },
  tile: { type: 'boolean' },
  'max-pixels': { type: 'string' },
} as const satisfies Options;

export class UsageError extends FacefleetError {
  constructor(message: string) {
    super('usage', message);
  }
}

/** Strict parse: an unknown flag or a missing value is a UsageError (exit 2). */
/** `--help` on any command: print its usage and exit 0. */
export class HelpRequest extends Error {
  constructor(readonly usage: string) {
    super(usage);
  }
}

export function parse<T extends Options>(args: string[], options: T, usage: string): Parsed<T> {
  if (args.includes('--help') || args.includes('-h')) throw new HelpRequest(usage);
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]}\nusage: ${usage}`);
  }
}

export function numberFlag(value: string | undefined, name: string, opts: { min?: number; max?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
    const range = opts.min !== undefined && opts.max !== undefined ? ` between ${opts.min} and ${opts.max}` : '';
    throw new UsageError(`--${name} must be a number${range}, got "${value}"`);
  }
  return n;
}

export function required(value: string | undefined, name: string, usage: string): string {
  if (value === undefined || value === '') throw new UsageError(`--${name} is required\nusage: ${usage}`);
  return value;
}
