import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The repository root (this file lives in test/). */
export const ROOT = resolve(import.meta.dirname, '..');

/** Shared test data: FACEFLEET_DATA_DIR, else ../shared/data beside the repo. */
export const DATA_DIR = process.env.FACEFLEET_DATA_DIR ? resolve(process.env.FACEFLEET_DATA_DIR) : resolve(ROOT, '..', 'shared', 'data');

/** True when the named set is present; otherwise says once, clearly, that its tests are skipped. */
export function hasData(set: string): boolean {
  const ok = existsSync(join(DATA_DIR, set));
  if (!ok) console.warn(`SKIPPED: test data ${join(DATA_DIR, set)} is absent (set FACEFLEET_DATA_DIR to the shared data folder)`);
  return ok;
}

export const data = (...parts: string[]): string => join(DATA_DIR, ...parts);

/** Who is in each bbt group photo (checked by eye on the annotated demo output). */
export const BBT_PRESENT: Record<string, string[]> = {
  'bbt1.jpg': ['howard', 'leonard', 'raj', 'sheldon'],
  'bbt2.jpg': ['leonard', 'raj', 'sheldon'],
  'bbt3.jpg': ['howard', 'leonard', 'penny', 'raj', 'sheldon'],
  'bbt4.jpg': ['amy', 'bernadette', 'leonard', 'penny', 'raj', 'sheldon'],
  'bbt5.jpg': ['howard', 'leonard', 'penny', 'raj', 'sheldon'],
};

/**
 * True when the command is on PATH. Absent: its tests are skipped with one clear line, except
 * under CI (CI=true), where .ci/run installs it and its absence is a failure, not a skip.
 */
export function hasTool(command: string): boolean {
  const ok = (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, command)));
  if (ok) return true;
  if (process.env.CI === 'true') throw new Error(`${command} is not installed: .ci/run installs it from Debian (apt-get install ${command})`);
  console.warn(`SKIPPED: ${command} is not installed (apt-get install ${command}); the tests that need it are skipped`);
  return false;
}
