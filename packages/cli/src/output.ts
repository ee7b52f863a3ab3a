import type { Box, DetectedFace, Point } from '@facefleet/vision';
import { round } from './context.js';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

export const stdio: Io = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

export function boxJson(b: Box): Box {
  return { x: round(b.x, 1), y: round(b.y, 1), width: round(b.width, 1), height: round(b.height, 1) };
}

export function landmarksJson(points: readonly Point[]): [number, number][] {
  return points.map(([x, y]) => [round(x, 1), round(y, 1)]);
}

export function faceJson(f: DetectedFace): Record<string, unknown> {
  return { box: boxJson(f.box), score: round(f.score), landmarks: landmarksJson(f.landmarks), quality: f.quality };
}

/** A plain text table, columns padded to their widest cell. */
export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = cells[0]?.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length))) ?? [];
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
