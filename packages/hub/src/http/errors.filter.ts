import { Catch, HttpException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { FacefleetError, type ErrorCode } from '@facefleet/protocol';

const STATUS: Record<ErrorCode, number> = {
  usage: 400,
  config: 400,
  decode: 400,
  noFace: 400,
  modelMismatch: 400,
  protocol: 400,
  imageTooLarge: 413,
  notFound: 404,
  conflict: 409,
  unavailable: 503,
  model: 500,
};

/** Domain errors become HTTP statuses here and only here; the body is always {statusCode, error, message}. */
@Catch()
export class ErrorsFilter implements ExceptionFilter {
  constructor(private readonly log: (msg: string) => void) {}

  catch(err: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    if (err instanceof FacefleetError) {
      const status = STATUS[err.code];
      res.status(status).json({ statusCode: status, error: err.code, message: err.message });
      return;
    }
    if (err instanceof HttpException) {
      const body = err.getResponse();
      const message = typeof body === 'string' ? body : ((body as { message?: unknown }).message ?? err.message);
      res.status(err.getStatus()).json({ statusCode: err.getStatus(), error: err.name, message: Array.isArray(message) ? message.join('; ') : message });
      return;
    }
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.parse.failed') {
      res.status(400).json({ statusCode: 400, error: 'BadRequest', message: `malformed JSON body: ${e.message ?? ''}` });
      return;
    }
    if (e.type === 'entity.too.large') {
      res.status(413).json({ statusCode: 413, error: 'PayloadTooLarge', message: 'request body too large' });
      return;
    }
    this.log(`http: ${(err as Error).stack ?? String(err)}`);
    res.status(500).json({ statusCode: 500, error: 'Internal', message: 'internal error' });
  }
}
