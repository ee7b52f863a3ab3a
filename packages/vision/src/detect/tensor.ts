import type { RgbImage } from '../image/raster.js';
import type { InputNormalisation } from './types.js';

/**
 * Pack an RGB image into a planar float32 NCHW tensor of size (width x height), padding
 * right and bottom with black (normalised like any other pixel). `out` may be reused across
 * calls: every element of the (width x height) tensor at `offset` is written.
 */
export function toPlanar(
  image: RgbImage,
  norm: InputNormalisation,
  width = image.width,
  height = image.height,
  out: Float32Array<ArrayBuffer> = new Float32Array(3 * width * height),
  offset = 0,
): Float32Array<ArrayBuffer> {
  const plane = width * height;
  // One pass over the interleaved source writes all three planes: this runs on every detector
  // input (issue 6), so no per-pixel arrays or lookups.
  const first = norm.colorOrder === 'RGB' ? 0 : 2;
  const third = 2 - first;
  const [m0, m1, m2] = norm.mean;
  const k0 = 1 / norm.std[0], k1 = 1 / norm.std[1], k2 = 1 / norm.std[2];
  const w = Math.min(width, image.width);
  const h = Math.min(height, image.height);
  const data = image.data;
  const stride = image.width * 3;
  for (let y = 0; y < h; y++) {
    let s = y * stride;
    const row = offset + y * width;
    for (let d = row, end = row + w; d < end; d++, s += 3) {
      out[d] = (data[s + first]! - m0) * k0;
      out[d + plane] = (data[s + 1]! - m1) * k1;
      out[d + 2 * plane] = (data[s + third]! - m2) * k2;
    }
  }
  const pads = [(0 - m0) * k0, (0 - m1) * k1, (0 - m2) * k2];
  for (let c = 0; c < 3; c++) {
    const base = offset + c * plane;
    if (w < width) for (let y = 0; y < h; y++) out.fill(pads[c]!, base + y * width + w, base + (y + 1) * width);
    out.fill(pads[c]!, base + h * width, base + plane);
  }
  return out;
}

/**
 * A model's input buffer, kept between calls so each detector input is not a fresh multi-MB
 * allocation (page faults and GC on every image). A call made while another holds the buffer
 * gets its own, so concurrent callers never share memory.
 */
export class ReusableBuffer {
  private spare: Float32Array<ArrayBuffer> | undefined;

  async use<T>(length: number, work: (data: Float32Array<ArrayBuffer>) => Promise<T>): Promise<T> {
    let whole = this.take();
    if (whole === undefined || whole.length < length) whole = new Float32Array(length);
    try {
      return await work(whole.subarray(0, length));
    } finally {
      // Another call may have returned a buffer meanwhile: keep the larger one.
      const kept = this.spare;
      if (kept === undefined || kept.length < whole.length) this.spare = whole;
    }
  }

  private take(): Float32Array<ArrayBuffer> | undefined {
    const whole = this.spare;
    this.spare = undefined;
    return whole;
  }
}
