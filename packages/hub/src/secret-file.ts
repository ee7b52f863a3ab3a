import { chmodSync, linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

/**
 * The contents of a secret file in the data dir, made with `make()` if it does not exist yet.
 * Replicas sharing one data dir may start together: the file is written whole under a temporary
 * name and linked into place, which fails if another process got there first; every process then
 * reads the one file that won, so all of them hold the same key (owner-only, mode 0600).
 */
export function readOrCreateSecret(path: string, make: () => string | Buffer): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    writeFileSync(tmp, make(), { mode: 0o600 });
    chmodSync(tmp, 0o600); // the umask may have narrowed it
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
  return readFileSync(path);
}
