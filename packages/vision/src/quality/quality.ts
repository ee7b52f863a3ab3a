import type { Point, RgbImage } from '../image/raster.js';
import type { Detection } from '../detect/types.js';

export interface FaceQuality {
  /** 0..1, the product of the factors below; enrolment wants at least QUALITY_MIN_ENROL. */
  score: number;
  /** Shorter side of the face box, source pixels. */
  sizePx: number;
  /** Distance between the eyes, source pixels. */
  interEyePx: number;
  /** Variance of the Laplacian on the aligned 112x112 grey face (blur -> small). */
  sharpness: number;
  /** Rough head pose from the five landmarks, degrees (sign: image left / up negative). */
  yawDeg: number;
  pitchDeg: number;
  rollDeg: number;
  detectionScore: number;
}

export const QUALITY_MIN_ENROL = 0.25;

/**
 * Cheap, model-free face quality. Pose comes from landmark geometry: the nose's offset from the
 * eye-mouth midline (yaw) and its height between the eye and mouth lines (pitch). These are
 * coarse (within ~10 degrees near frontal) but monotonic, which is what gating needs.
 */
export function faceQuality(d: Detection, aligned: RgbImage): FaceQuality {
  const [le, re, nose, lm, rm] = d.landmarks as [Point, Point, Point, Point, Point];
  const interEyePx = Math.hypot(re[0] - le[0], re[1] - le[1]);
  const rollDeg = (Math.atan2(re[1] - le[1], re[0] - le[0]) * 180) / Math.PI;
  // Work in the face's own frame (undo roll) so yaw and pitch do not mix with it.
  const r = (-rollDeg * Math.PI) / 180;
  const rot = ([x, y]: Point): Point => [x * Math.cos(r) - y * Math.sin(r), x * Math.sin(r) + y * Math.cos(r)];
  const [e1, e2, n, m1, m2] = [le, re, nose, lm, rm].map(rot) as [Point, Point, Point, Point, Point];
  const eyeMid: Point = [(e1[0] + e2[0]) / 2, (e1[1] + e2[1]) / 2];
  const mouthMid: Point = [(m1[0] + m2[0]) / 2, (m1[1] + m2[1]) / 2];
  const midX = (eyeMid[0] + mouthMid[0]) / 2;
  const eyeDist = Math.max(1e-6, Math.abs(e2[0] - e1[0]));
  const yawRatio = (n[0] - midX) / (eyeDist / 2);
  // Nose depth is about half the inter-ocular distance, so offset/half-IOD ~ tan(yaw).
  const yawDeg = (Math.atan(yawRatio) * 180) / Math.PI;
  const faceH = Math.max(1e-6, mouthMid[1] - eyeMid[1]);
  // The nose tip sits ~55% of the way from the eye line to the mouth line on a frontal face.
  const pitchRatio = ((n[1] - eyeMid[1]) / faceH - 0.55) / 0.45;
  const pitchDeg = (Math.atan(pitchRatio) * 180) / Math.PI;
  const sizePx = Math.min(d.box.width, d.box.height);
  const sharpness = laplacianVariance(aligned);

  const sizeF = clamp01((sizePx - 16) / (64 - 16));
  const sharpF = clamp01(sharpness / 60);
  const poseF = clamp01(1 - Math.max(Math.abs(yawDeg), Math.abs(pitchDeg)) / 90);
  const detF = clamp01((d.score - 0.5) / 0.4);
  const score = round3(sizeF * Math.sqrt(sharpF) * poseF * (0.5 + 0.5 * detF));
  return {
    score,
    sizePx: round3(sizePx),
    interEyePx: round3(interEyePx),
    sharpness: round3(sharpness),
    yawDeg: round3(yawDeg),
    pitchDeg: round3(pitchDeg),
    rollDeg: round3(rollDeg),
    detectionScore: round3(d.score),
  };
}

/** Variance of the 4-neighbour Laplacian of the grey image, central region only (avoids black borders). */
export function laplacianVariance(img: RgbImage): number {
  const { width: w, height: h, data } = img;
  const grey = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) grey[i] = 0.299 * data[i * 3]! + 0.587 * data[i * 3 + 1]! + 0.114 * data[i * 3 + 2]!;
  const x0 = Math.floor(w * 0.2), x1 = Math.ceil(w * 0.8), y0 = Math.floor(h * 0.2), y1 = Math.ceil(h * 0.8);
  let sum = 0, sq = 0, n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = y * w + x;
      const v = grey[i - 1]! + grey[i + 1]! + grey[i - w]! + grey[i + w]! - 4 * grey[i]!;
      sum += v; sq += v * v; n++;
    }
  }
  const mean = sum / n;
  return sq / n - mean * mean;
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
