import { readFile } from 'node:fs/promises';
import sharp, { type Metadata } from 'sharp';
import { DecodeError } from '@facefleet/protocol';
import type { RgbImage } from './raster.js';

export interface DecodeOptions {
  /**
   * Largest accepted image, in pixels (width x height, read from the header before any pixel
   * is decoded, so decompression bombs are refused in milliseconds). Default 100 MP.
   */
  maxPixels?: number;
}

export interface DecodedImage extends RgbImage {
  /** Container format as sharp reports it (jpeg, png, webp, gif, tiff, heif, ...). */
  format: string;
  /** EXIF orientation that was applied (1 when none). */
  orientation: number;
}

export const DEFAULT_MAX_PIXELS = 100_000_000;

/**
 * Decode any image sharp can read into upright 8-bit sRGB: EXIF orientation applied first,
 * CMYK/Lab/greyscale/16-bit converted, alpha flattened onto white, animations reduced to the
 * first frame. Throws DecodeError with a one-line reason for anything else.
 */
export async function decodeImage(input: Uint8Array | string, options: DecodeOptions = {}): Promise<DecodedImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const bytes = typeof input === 'string' ? await readBytes(input) : input;
  if (bytes.length === 0) throw new DecodeError('empty file');
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new DecodeError(`not a readable image (${reason(err)})`, { cause: err });
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width <= 0 || height <= 0) throw new DecodeError(`image has no size (format ${meta.format ?? 'unknown'})`);
  if (width * height > maxPixels) {
    throw new DecodeError(
      `image is ${width}x${height} (${((width * height) / 1e6).toFixed(1)} MP), over the limit of ${maxPixels.toLocaleString('en-US')} pixels`,
      { tooLarge: true },
    );
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'truncated', pages: 1 })
      .rotate()
      .toColourspace('srgb')
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new DecodeError(`unexpected channel count ${info.channels}`);
    return {
      width: info.width,
      height: info.height,
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      format: meta.format ?? 'unknown',
      orientation: meta.orientation ?? 1,
    };
  } catch (err) {
    if (err instanceof DecodeError) throw err;
    if (meta.format === 'heif' && meta.compression === 'hevc') {
      throw new DecodeError('HEIC (HEVC-coded) images cannot be decoded by this build of libvips; convert to JPEG or AVIF', { cause: err });
    }
    throw new DecodeError(`cannot decode ${meta.format ?? 'image'} (${reason(err)})`, { cause: err });
  }
}

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : reason(err);
    throw new DecodeError(what, { cause: err });
  }
}

function reason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  // libvips messages run over several lines; the first says what went wrong.
  return text.split('\n')[0]!.replace(/^Input (buffer|file) /, '').trim();
}
