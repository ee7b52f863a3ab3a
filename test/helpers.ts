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
