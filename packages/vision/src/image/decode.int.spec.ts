import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { data, hasData } from '../../../../test/helpers.js';
import { withOrientation } from '../../../../test/orientation.js';
import { decodeImage } from './decode.js';

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

describe('decodeImage', () => {
  it('refuses empty, missing and non-image input with a one-line reason', async () => {
    await expect(decodeImage(new Uint8Array())).rejects.toMatchObject({ code: 'decode', message: 'empty file' });
    await expect(decodeImage('/nonexistent/x.jpg')).rejects.toMatchObject({ code: 'decode', message: 'no such file' });
    await expect(decodeImage(Buffer.from('GIF89a but not really'))).rejects.toMatchObject({ code: 'decode' });
    const err = await decodeImage(Buffer.from('hello world, not an image')).catch((e: Error) => e);
    expect((err as Error).message).not.toContain('\n');
  });

  it('refuses an image over the pixel limit before decoding it', async () => {
    const big = await sharp({ create: { width: 3000, height: 3000, channels: 3, background: '#888' } }).png().toBuffer();
    await expect(decodeImage(big, { maxPixels: 4_000_000 })).rejects.toMatchObject({ code: 'imageTooLarge' });
    const ok = await decodeImage(big, { maxPixels: 10_000_000 });
    expect([ok.width, ok.height, ok.data.length]).toEqual([3000, 3000, 3000 * 3000 * 3]);
  });

  it('flattens alpha and expands greyscale and 16-bit to 8-bit RGB', async () => {
    const rgba = await sharp({ create: { width: 4, height: 4, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const flat = await decodeImage(rgba);
    expect(Array.from(flat.data.subarray(0, 3))).toEqual([255, 255, 255]);
    const grey16 = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#808080' } }).greyscale().toColourspace('grey16').png().toBuffer();
    const g = await decodeImage(grey16);
    expect(g.data.length).toBe(4 * 4 * 3);
    expect(Math.abs(g.data[0]! - 128)).toBeLessThanOrEqual(1);
  });

  it('applies every EXIF orientation (1..8) so the pixels come out upright', async () => {
    const upright = await sharp({ create: { width: 60, height: 40, channels: 3, background: '#000' } })
      .composite([{ input: { create: { width: 20, height: 10, channels: 3, background: '#fff' } }, left: 0, top: 0 }])
      .png()
      .toBuffer();
    const reference = await decodeImage(await sharp(upright).jpeg({ quality: 95 }).toBuffer());
    for (let n = 1; n <= 8; n++) {
      const img = await decodeImage(await withOrientation(upright, n));
      expect([n, img.width, img.height]).toEqual([n, 60, 40]);
      expect(img.orientation).toBe(n);
      expect([n, meanAbsDiff(img.data, reference.data) < 6]).toEqual([n, true]);
    }
  });

  describe.runIf(hasData('tricky_inputs'))('on ../shared/data/tricky_inputs', () => {
    it('decodes the EXIF examples upright (landscape stays wider than tall)', async () => {
      const dir = data('tricky_inputs', 'exif_orientation');
      for (const f of readdirSync(dir)) {
        const img = await decodeImage(join(dir, f));
        if (f.startsWith('Landscape')) expect([f, img.width > img.height]).toEqual([f, true]);
        else expect([f, img.height > img.width]).toEqual([f, true]);
      }
    });

    it('refuses both decompression bombs quickly, from the header', async () => {
      for (const f of ['giant-image.jpg', '65536-uint32-limit.png']) {
        const started = performance.now();
        await expect(decodeImage(data('tricky_inputs', 'sharp_fixtures', f))).rejects.toMatchObject({ code: 'imageTooLarge' });
        expect(performance.now() - started).toBeLessThan(2000);
      }
    });

    it('converts CMYK, Lab, palette and animated inputs to 8-bit RGB', async () => {
      for (const f of ['Channel_digital_image_CMYK_color.jpg', 'fogra-0-100-100-0.tif', 'cielab-dagams.tiff', 'swiss.png', 'animated-loop-3.webp', 'rotating-squares.gif']) {
        const img = await decodeImage(data('tricky_inputs', 'sharp_fixtures', f));
        expect(img.data.length).toBe(img.width * img.height * 3);
      }
    });
  });
});
