/**
 * The one domain error family. Services throw these; front ends (CLI exit codes, HTTP filters,
 * MQTT error replies) map `code` to their own vocabulary.
 */
export type ErrorCode =
  | 'config'
  | 'model'
  | 'modelMismatch'
  | 'decode'
  | 'imageTooLarge'
  | 'noFace'
  | 'protocol'
  | 'notFound'
  | 'conflict'
  | 'unavailable'
  | 'usage';

export class FacefleetError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A configuration value is missing or invalid. */
export class ConfigError extends FacefleetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('config', message, options);
  }
}

/** A model file is missing, corrupt, or does not fit its manifest; or embeddings of two models met. */
export class ModelError extends FacefleetError {
  constructor(message: string, options?: { cause?: unknown; mismatch?: boolean }) {
    super(options?.mismatch === true ? 'modelMismatch' : 'model', message, options);
  }
}

/** Input bytes are not a decodable image (or exceed the pixel limit). */
export class DecodeError extends FacefleetError {
  constructor(message: string, options?: { cause?: unknown; tooLarge?: boolean }) {
    super(options?.tooLarge === true ? 'imageTooLarge' : 'decode', message, options);
  }
}

export class ProtocolError extends FacefleetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('protocol', message, options);
  }
}

export class NotFoundError extends FacefleetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('notFound', message, options);
  }
}

export class ConflictError extends FacefleetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('conflict', message, options);
  }
}

export class UnavailableError extends FacefleetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', message, options);
  }
}

/** Codes that mean "the caller's input was wrong" (CLI exit 2, HTTP 4xx). */
export function isInputError(code: ErrorCode): boolean {
  return (
    code === 'decode' ||
    code === 'imageTooLarge' ||
    code === 'noFace' ||
    code === 'usage' ||
    code === 'notFound' ||
    code === 'conflict' ||
    code === 'modelMismatch' ||
    code === 'config'
  );
}
