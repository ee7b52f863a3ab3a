import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DecodeError } from '@facefleet/protocol';

export interface LabelledPair {
  a: string;
  b: string;
  same: boolean;
  fold: number;
}

/**
 * Parse an LFW-style pairs.txt: a header `folds n` (or `n`), then per fold n same-person lines
 * `name i j` and n different-person lines `name1 i name2 j`. Image paths are
 * `<root>/<name>/<name>_%04d.jpg`. Files without a header get folds by position (10 equal parts).
 */
export function parsePairsFile(path: string, root: string): LabelledPair[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DecodeError(`${path}: cannot read pairs file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  const header = lines[0]?.split(/\s+/) ?? [];
  const hasHeader = header.length <= 2 && header.every((t) => /^\d+$/.test(t));
  const body = hasHeader ? lines.slice(1) : lines;
  if (body.length === 0) throw new DecodeError(`${path}: no pairs in the file`);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new DecodeError(`${root}: --root is not a directory`);
  const image = (name: string, n: string): string => join(root, name, `${name}_${n.padStart(4, '0')}.jpg`);
  const perFold = hasHeader && header.length === 2 ? 2 * Number(header[1]) : Math.ceil(body.length / 10);
  return body.map((line, i) => {
    const t = line.split(/\s+/);
    const fold = Math.min(9, Math.floor(i / Math.max(1, perFold)));
    if (t.length === 3) return { a: image(t[0]!, t[1]!), b: image(t[0]!, t[2]!), same: true, fold };
    if (t.length === 4) return { a: image(t[0]!, t[1]!), b: image(t[2]!, t[3]!), same: false, fold };
    throw new DecodeError(`${path}: line ${i + (hasHeader ? 2 : 1)} is not "name i j" or "name1 i name2 j": ${line.slice(0, 80)}`);
  });
}
