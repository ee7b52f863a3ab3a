import type { Point, RgbImage } from '../image/raster.js';

/**
 * The ArcFace 112x112 five-point template (insightface `arcface_dst`): left eye, right eye,
 * nose tip, left mouth corner, right mouth corner, as seen in the image.
 */
export const ARCFACE_TEMPLATE: readonly Point[] = [
  [38.2946, 51.6963],
  [73.5318, 51.5014],
  [56.0252, 71.7366],
  [41.5493, 92.3655],
  [70.7299, 92.2041],
];

/** dst = [a -b; b a] * src + [tx; ty]: rotation, uniform scale and translation. */
export interface Similarity {
  a: number;
  b: number;
  tx: number;
  ty: number;
}

/**
 * Least-squares similarity transform taking `src` points onto `dst` (Umeyama 1991, restricted
 * to 2-D without reflection, which has this closed form).
 */
export function estimateSimilarity(src: readonly Point[], dst: readonly Point[]): Similarity {
  const n = src.length;
  let sx = 0, sy = 0, dx = 0, dy = 0;
  for (let i = 0; i < n; i++) {
    sx += src[i]![0]; sy += src[i]![1]; dx += dst[i]![0]; dy += dst[i]![1];
  }
  sx /= n; sy /= n; dx /= n; dy /= n;
  let num1 = 0, num2 = 0, den = 0;
  for (let i = 0; i < n; i++) {
    const px = src[i]![0] - sx, py = src[i]![1] - sy;
    const qx = dst[i]![0] - dx, qy = dst[i]![1] - dy;
    num1 += px * qx + py * qy;
    num2 += px * qy - py * qx;
    den += px * px + py * py;
  }
  if (den === 0) return { a: 1, b: 0, tx: dx - sx, ty: dy - sy };
  const a = num1 / den;
  const b = num2 / den;
  return { a, b, tx: dx - (a * sx - b * sy), ty: dy - (b * sx + a * sy) };
}

/**
 * Warp the face given by five landmarks onto the template (default 112x112), sampling the
 * source bilinearly; pixels outside the source are black, as in insightface's `norm_crop`.
 */
export function alignFace(image: RgbImage, landmarks: readonly Point[], size = 112, template = ARCFACE_TEMPLATE): RgbImage {
  const dst = size === 112 ? template : template.map(([x, y]) => [(x * size) / 112, (y * size) / 112] as const);
  const m = estimateSimilarity(landmarks, dst);
  // Invert dst = S*src + t  =>  src = S^-1 (dst - t), S^-1 = [a b; -b a] / (a^2 + b^2).
  const det = m.a * m.a + m.b * m.b;
  const ia = m.a / det, ib = m.b / det;
  const out = new Uint8Array(size * size * 3);
  const { width: w, height: h, data } = image;
  for (let v = 0; v < size; v++) {
    for (let u = 0; u < size; u++) {
      const qx = u - m.tx, qy = v - m.ty;
      const x = ia * qx + ib * qy;
      const y = -ib * qx + ia * qy;
      const o = (v * size + u) * 3;
      const x0 = Math.floor(x), y0 = Math.floor(y);
      const fx = x - x0, fy = y - y0;
      for (let c = 0; c < 3; c++) {
        const p00 = sample(data, w, h, x0, y0, c);
        const p10 = sample(data, w, h, x0 + 1, y0, c);
        const p01 = sample(data, w, h, x0, y0 + 1, c);
        const p11 = sample(data, w, h, x0 + 1, y0 + 1, c);
        const top = p00 + (p10 - p00) * fx;
        const bottom = p01 + (p11 - p01) * fx;
        out[o + c] = Math.round(top + (bottom - top) * fy);
      }
    }
  }
  return { width: size, height: size, data: out };
}

function sample(data: Uint8Array, w: number, h: number, x: number, y: number, c: number): number {
  if (x < 0 || y < 0 || x >= w || y >= h) return 0;
  return data[(y * w + x) * 3 + c]!;
}
