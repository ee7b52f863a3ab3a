import { describe, expect, it } from 'vitest';
import { ReusableBuffer, toPlanar } from './tensor.js';
import type { InputNormalisation } from './types.js';

/** The obvious per-pixel definition the fast packer must match exactly. */
function reference(data: Uint8Array, iw: number, ih: number, norm: InputNormalisation, w: number, h: number): Float32Array {
  const out = new Float32Array(3 * w * h);
  const order = norm.colorOrder === 'RGB' ? [0, 1, 2] : [2, 1, 0];
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = x < iw && y < ih ? data[(y * iw + x) * 3 + order[c]!]! : 0;
        out[c * w * h + y * w + x] = (v - norm.mean[c]!) * (1 / norm.std[c]!);
      }
    }
  }
  return out;
}

describe('toPlanar', () => {
  const iw = 7, ih = 5;
  const data = Uint8Array.from({ length: iw * ih * 3 }, (_, i) => (i * 37) % 256);
  const image = { width: iw, height: ih, data };

  it('packs RGB and BGR planes with per-channel mean and std, padding right and bottom as black', () => {
    const rgb: InputNormalisation = { colorOrder: 'RGB', mean: [127.5, 120, 110], std: [128, 64, 32] };
    const bgr: InputNormalisation = { colorOrder: 'BGR', mean: [0, 0, 0], std: [1, 1, 1] };
    expect(toPlanar(image, rgb, 8, 8)).toEqual(reference(data, iw, ih, rgb, 8, 8));
    expect(toPlanar(image, bgr)).toEqual(reference(data, iw, ih, bgr, iw, ih));
    expect(toPlanar(image, bgr, 4, 3)).toEqual(reference(data, iw, ih, bgr, 4, 3));
  });

  it('overwrites every element of a reused buffer and leaves other batch slots alone', () => {
    const norm: InputNormalisation = { colorOrder: 'RGB', mean: [127.5, 127.5, 127.5], std: [128, 128, 128] };
    const slot = 3 * 8 * 6;
    const out = new Float32Array(2 * slot).fill(42);
    toPlanar(image, norm, 8, 6, out, slot);
    expect(out.subarray(0, slot).every((v) => v === 42)).toBe(true);
    expect(out.subarray(slot)).toEqual(reference(data, iw, ih, norm, 8, 6));
  });
});

describe('ReusableBuffer', () => {
  it('hands the same memory to calls in sequence, sized to each call', async () => {
    const buffer = new ReusableBuffer();
    const first = await buffer.use(12, (d) => Promise.resolve(d));
    const second = await buffer.use(6, (d) => Promise.resolve(d));
    expect(second.length).toBe(6);
    expect(second.buffer).toBe(first.buffer);
  });

  it('never hands the same memory to calls that overlap', async () => {
    const buffer = new ReusableBuffer();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const a = buffer.use(8, async (d) => {
      await held;
      return d;
    });
    const b = await buffer.use(8, (d) => Promise.resolve(d));
    release();
    expect((await a).buffer).not.toBe(b.buffer);
  });
});
