import { cropResize, resizeRgb, type RgbImage } from '../image/raster.js';
import { nms } from './nms.js';
import type { Detection, DetectorModel } from './types.js';

export interface DetectOptions {
  /** Long side of the network input for the whole-image pass. Default 640. */
  inputSize?: number;
  /** Minimum detector score. Default 0.6. */
  scoreThreshold?: number;
  /** NMS IoU. Default 0.4. */
  nmsIou?: number;
  /** Faces whose box is smaller than this (shorter side, source pixels) are dropped. Default 12. */
  minFaceSizePx?: number;
  /**
   * Images whose long side is below this are upscaled to it before detection, so tight crops
   * and thumbnails go through the same network as photos. Default 320.
   */
  minInputSidePx?: number;
  /**
   * Border added around small images (fraction of the long side, default 0.25): a face that
   * fills the frame has no context for the detector otherwise.
   */
  smallImagePad?: number;
  /**
   * Extra tiled pass for images much larger than the input (so 20 px faces survive). Default false:
   * it costs up to 9 more detector passes (about 4x the detect time on the demo photos, where it
   * found no extra face); turn it on for crowds in high-resolution photos or frames.
   */
  tile?: boolean;
  /** Most tiles in that pass. Default 9 (3 x 3). */
  maxTiles?: number;
}

const DEFAULTS: Required<DetectOptions> = {
  inputSize: 640,
  scoreThreshold: 0.6,
  nmsIou: 0.4,
  minFaceSizePx: 12,
  minInputSidePx: 320,
  smallImagePad: 0.25,
  tile: false,
  maxTiles: 9,
};

export function detectDefaults(options: DetectOptions = {}): Required<DetectOptions> {
  return { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
}

/**
 * Find every face in an upright image, in its own pixel coordinates. One whole-image pass at
 * `inputSize`; small images are padded and upscaled; large ones get a tiled pass at higher
 * resolution; results merged by NMS.
 */
export async function detectFaces(model: DetectorModel, image: RgbImage, options: DetectOptions = {}): Promise<Detection[]> {
  const o = detectDefaults(options);
  const long = Math.max(image.width, image.height);
  let found: Detection[];
  if (long < o.minInputSidePx) {
    found = await detectSmall(model, image, o);
  } else {
    const scale = Math.min(1, o.inputSize / long);
    found = await pass(model, image, scale, { x: 0, y: 0, width: image.width, height: image.height }, o);
    if (o.tile && !model.fixedSize && scale < 0.6) found.push(...(await tiledPass(model, image, o)));
  }
  return nms(found, o.nmsIou)
    .filter((d) => Math.min(d.box.width, d.box.height) >= o.minFaceSizePx)
    .map((d) => clip(d, image));
}

async function detectSmall(model: DetectorModel, image: RgbImage, o: Required<DetectOptions>): Promise<Detection[]> {
  const long = Math.max(image.width, image.height);
  const pad = Math.round(long * o.smallImagePad);
  const padded = padImage(image, pad);
  const scale = o.minInputSidePx / Math.max(padded.width, padded.height);
  const dets = await pass(model, padded, scale, { x: 0, y: 0, width: padded.width, height: padded.height }, o);
  return dets.map((d) => shift(d, -pad, -pad));
}

async function tiledPass(model: DetectorModel, image: RgbImage, o: Required<DetectOptions>): Promise<Detection[]> {
  const perSide = Math.max(1, Math.floor(Math.sqrt(o.maxTiles)));
  const long = Math.max(image.width, image.height);
  // Tiles of inputSize (network pixels), overlapping by 20%, covering the image in perSide steps.
  const scale = Math.min(1, (o.inputSize * (perSide - (perSide - 1) * 0.2)) / long);
  const tileSrc = Math.round(o.inputSize / scale);
  const out: Detection[] = [];
  for (const y of starts(image.height, tileSrc)) {
    for (const x of starts(image.width, tileSrc)) {
      const region = { x, y, width: Math.min(tileSrc, image.width - x), height: Math.min(tileSrc, image.height - y) };
      out.push(...(await pass(model, image, scale, region, o)));
    }
  }
  return out;
}

function starts(total: number, tile: number): number[] {
  if (tile >= total) return [0];
  const n = Math.ceil((total - tile) / (tile * 0.8)) + 1;
  const step = (total - tile) / (n - 1);
  return Array.from({ length: n }, (_, i) => Math.round(i * step));
}

/** Run the network on `region` of `image` scaled by `scale`; map results back to image pixels. */
async function pass(
  model: DetectorModel,
  image: RgbImage,
  scale: number,
  region: { x: number; y: number; width: number; height: number },
  o: Required<DetectOptions>,
): Promise<Detection[]> {
  const src = { width: Math.round(region.width), height: Math.round(region.height) };
  let s = scale;
  let w = Math.max(1, Math.round(src.width * s));
  let h = Math.max(1, Math.round(src.height * s));
  let netW: number, netH: number;
  if (model.fixedSize) {
    [netW, netH] = model.fixedSize;
    s = Math.min(netW / src.width, netH / src.height);
    w = Math.max(1, Math.round(src.width * s));
    h = Math.max(1, Math.round(src.height * s));
  } else {
    const m = model.sizeMultiple;
    netW = Math.max(m, Math.ceil(w / m) * m);
    netH = Math.max(m, Math.ceil(h / m) * m);
  }
  const whole = region.x === 0 && region.y === 0 && src.width === image.width && src.height === image.height;
  const resized = whole ? await resizeRgb(image, w, h) : await cropResize(image, region, w, h);
  const sx = src.width / w, sy = src.height / h;
  const dets = await model.run(resized, o.scoreThreshold, netW, netH);
  return dets
    .filter((d) => d.box.x + d.box.width / 2 < w && d.box.y + d.box.height / 2 < h)
    .map((d) => ({
      score: d.score,
      box: { x: d.box.x * sx + region.x, y: d.box.y * sy + region.y, width: d.box.width * sx, height: d.box.height * sy },
      landmarks: d.landmarks.map(([px, py]) => [px * sx + region.x, py * sy + region.y] as const),
    }));
}

/** Copy `image` into a black canvas with `border` on every side (or right/bottom up to width x height). */
function padImage(image: RgbImage, border: number, width = image.width + 2 * border, height = image.height + 2 * border): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < image.height; y++) {
    data.set(image.data.subarray(y * image.width * 3, (y + 1) * image.width * 3), ((y + border) * width + border) * 3);
  }
  return { width, height, data };
}

function shift(d: Detection, dx: number, dy: number): Detection {
  return {
    score: d.score,
    box: { ...d.box, x: d.box.x + dx, y: d.box.y + dy },
    landmarks: d.landmarks.map(([x, y]) => [x + dx, y + dy] as const),
  };
}

/** Clamp the box to the image; landmarks are kept as predicted (they may lie just outside). */
function clip(d: Detection, image: RgbImage): Detection {
  const x1 = Math.max(0, d.box.x), y1 = Math.max(0, d.box.y);
  const x2 = Math.min(image.width, d.box.x + d.box.width), y2 = Math.min(image.height, d.box.y + d.box.height);
  return { ...d, box: { x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1) } };
}
