import type { RgbImage } from '../image/raster.js';
import type { InputNormalisation } from './types.js';

/**
 * Pack an RGB image into a planar float32 NCHW tensor of size (width x height), padding
 * right and bottom with black (normalised like any other pixel).
 */
export function toPlanar(
  image: RgbImage,
  norm: InputNormalisation,
  width = image.width,
  height = image.height,
  out = new Float32Array(3 * width * height),
  offset = 0,
): Float32Array {
  const plane = width * height;
  const order = norm.colorOrder === 'RGB' ? [0, 1, 2] : [2, 1, 0];
  for (let c = 0; c < 3; c++) {
    const src = order[c]!;
    const mean = norm.mean[c]!;
    const scale = 1 / norm.std[c]!;
    const base = offset + c * plane;
    const pad = (0 - mean) * scale;
    for (let y = 0; y < height; y++) {
      const row = base + y * width;
      if (y >= image.height) {
        out.fill(pad, row, row + width);
        continue;
      }
      const srcRow = y * image.width * 3;
      const w = Math.min(width, image.width);
      for (let x = 0; x < w; x++) out[row + x] = (image.data[srcRow + x * 3 + src]! - mean) * scale;
      if (w < width) out.fill(pad, row + w, row + width);
    }
  }
  return out;
}
