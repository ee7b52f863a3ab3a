import sharp from 'sharp';

/** An upright 8-bit RGB image, pixels interleaved row by row. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export type Point = readonly [number, number];

/** Resize with libvips (sharp); used for detector inputs, where quality and speed both matter. */
export async function resizeRgb(image: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (width === image.width && height === image.height) return image;
  const data = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: width > image.width ? 'cubic' : 'lanczos3' })
    .raw()
    .toBuffer();
  return { width, height, data };
}

/** Crop a rectangle (clamped to the image) and resize it; outside pixels are never read. */
export async function cropResize(image: RgbImage, box: Box, width: number, height: number): Promise<RgbImage> {
  const left = Math.max(0, Math.floor(box.x));
  const top = Math.max(0, Math.floor(box.y));
  const right = Math.min(image.width, Math.ceil(box.x + box.width));
  const bottom = Math.min(image.height, Math.ceil(box.y + box.height));
  const cw = Math.max(1, right - left);
  const ch = Math.max(1, bottom - top);
  const data = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .extract({ left: Math.min(left, image.width - 1), top: Math.min(top, image.height - 1), width: cw, height: ch })
    .resize(width, height, { fit: 'fill' })
    .raw()
    .toBuffer();
  return { width, height, data };
}

export function mirrorRgb(image: RgbImage): RgbImage {
  const { width, height, data } = image;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < width; x++) {
      const s = row + x * 3;
      const d = row + (width - 1 - x) * 3;
      out[d] = data[s]!;
      out[d + 1] = data[s + 1]!;
      out[d + 2] = data[s + 2]!;
    }
  }
  return { width, height, data: out };
}
