import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface DownloadRequest {
  url: string;
  /** Where the finished file goes (renamed from `partPath` once complete). */
  path: string;
  partPath: string;
  /** The size the reference promises: more is refused, less is resumed. */
  bytes: number;
  /** HTTP Basic credentials (the device's id and secret). */
  auth?: { username: string; password: string };
  signal?: AbortSignal;
}

export interface DownloadTuning {
  /** Attempts before a transient failure (network, 5xx) is given up. */
  attempts: number;
  /** First pause between attempts; doubled each time. */
  retryDelayMs: number;
  /** Abort an attempt when no byte arrived for this long. */
  idleTimeoutMs: number;
}

export const DEFAULT_DOWNLOAD_TUNING: DownloadTuning = { attempts: 5, retryDelayMs: 1000, idleTimeoutMs: 30_000 };

/** A download that failed; `transient` ones (network, 5xx) may succeed later from where they stopped. */
export class DownloadError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
  ) {
    super(message);
  }
}

export interface DownloadResult {
  /** Bytes already on disk from an earlier attempt when the first request went out. */
  resumedFrom: number;
  attempts: number;
}

/**
 * Fetch a model file over HTTP into `partPath`, resuming what is there with `Range: bytes=<have>-`
 * (RFC 9110 §14.2: a 206 continues the file, a 200 is the whole file again), then rename it to
 * `path`. Transient failures are retried with backoff, each attempt resuming; the `.part` stays
 * on disk when it gives up, so the next attempt (a reconnect, a restart) continues it.
 */
export async function downloadModel(req: DownloadRequest, tuning: DownloadTuning = DEFAULT_DOWNLOAD_TUNING): Promise<DownloadResult> {
  mkdirSync(dirname(req.partPath), { recursive: true });
  const resumedFrom = existsSync(req.partPath) ? statSync(req.partPath).size : 0;
  let delayMs = tuning.retryDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await attemptDownload(req, tuning.idleTimeoutMs);
      renameSync(req.partPath, req.path);
      return { resumedFrom, attempts: attempt };
    } catch (err) {
      if (req.signal?.aborted === true) throw req.signal.reason;
      const e = err instanceof DownloadError ? err : new DownloadError(describe(err), true);
      if (!e.transient || attempt >= tuning.attempts) throw e;
      await sleep(delayMs, undefined, req.signal ? { signal: req.signal } : {});
      delayMs *= 2;
    }
  }
}

async function attemptDownload(req: DownloadRequest, idleTimeoutMs: number): Promise<void> {
  let have = existsSync(req.partPath) ? statSync(req.partPath).size : 0;
  if (have > req.bytes) {
    rmSync(req.partPath, { force: true });
    have = 0;
  }
  if (have === req.bytes) return; // complete already (stopped between the last byte and the rename)
  const headers: Record<string, string> = {};
  if (req.auth) headers.authorization = `Basic ${Buffer.from(`${req.auth.username}:${req.auth.password}`).toString('base64')}`;
  if (have > 0) headers.range = `bytes=${have}-`;
  const idle = new AbortController();
  let timer = setTimeout(() => idle.abort(new DownloadError(`no data for ${idleTimeoutMs} ms`, true)), idleTimeoutMs);
  const signal = req.signal ? AbortSignal.any([req.signal, idle.signal]) : idle.signal;
  try {
    const res = await fetch(req.url, { headers, signal });
    let offset: number;
    if (res.status === 206) {
      offset = contentRangeStart(res.headers.get('content-range'));
      if (offset !== have) {
        // Not the range asked for: start over rather than splice two versions together.
        await res.body?.cancel();
        rmSync(req.partPath, { force: true });
        throw new DownloadError(`server answered range ${res.headers.get('content-range') ?? '(none)'} to bytes=${have}-`, true);
      }
    } else if (res.status === 200) {
      offset = 0;
    } else if (res.status === 416) {
      await res.body?.cancel();
      rmSync(req.partPath, { force: true });
      throw new DownloadError(`server refused the range bytes=${have}- (416): starting over`, true);
    } else {
      await res.body?.cancel();
      const transient = res.status >= 500 || res.status === 429 || res.status === 408;
      throw new DownloadError(`GET ${redact(req.url)}: HTTP ${res.status}${res.status === 401 || res.status === 403 ? ' (device credentials refused)' : ''}`, transient);
    }
    if (!res.body) throw new DownloadError('empty response body', true);
    const file = await open(req.partPath, offset === 0 ? 'w' : 'a');
    let tooLong = false;
    try {
      let size = offset;
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        size += chunk.byteLength;
        if (size > req.bytes) {
          tooLong = true;
          throw new DownloadError(`server sent more than the ${req.bytes} bytes the reference states`, false);
        }
        await file.write(chunk);
        clearTimeout(timer);
        timer = setTimeout(() => idle.abort(new DownloadError(`no data for ${idleTimeoutMs} ms`, true)), idleTimeoutMs);
      }
      await file.sync();
      if (size < req.bytes) throw new DownloadError(`connection ended after ${size} of ${req.bytes} bytes`, true);
    } finally {
      await file.close();
      if (tooLong) rmSync(req.partPath, { force: true });
    }
  } catch (err) {
    if (idle.signal.aborted && idle.signal.reason instanceof DownloadError) throw idle.signal.reason;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function contentRangeStart(header: string | null): number {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header?.trim() ?? '');
  return m ? Number(m[1]) : -1;
}

function describe(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return `${e.message ?? String(err)}${cause !== undefined ? ` (${cause})` : ''}`;
}

/** A URL for logs and reports, without credentials or a query string. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}
