import type { Box, Point, RgbImage } from '../image/raster.js';

/** One face as a detector sees it: pixel box, score in 0..1, five landmarks. */
export interface Detection {
  box: Box;
  score: number;
  /** Left eye, right eye, nose tip, left mouth corner, right mouth corner: as seen in the image. */
  landmarks: Point[];
}

/** How a model wants its input laid out: colour order and per-channel (x - mean) / std, NCHW. */
export interface InputNormalisation {
  colorOrder: 'RGB' | 'BGR';
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/**
 * A detector network on one prepared input. The runner (detect/runner.ts) owns scaling,
 * padding and tiling and maps boxes back to the source image.
 */
export interface DetectorModel {
  readonly modelId: string;
  /** Input side must be a multiple of this (32 for YuNet and SCRFD). */
  readonly sizeMultiple: number;
  /** Fixed input size, when the network has one ([width, height]). */
  readonly fixedSize?: readonly [number, number];
  /**
   * Run on an image already scaled for the network; the tensor is `inputWidth` x `inputHeight`
   * (multiples of sizeMultiple, at least the image's size) with black padding right and bottom.
   */
  run(image: RgbImage, scoreThreshold: number, inputWidth?: number, inputHeight?: number): Promise<Detection[]>;
  dispose(): Promise<void>;
}
