import type { RgbImage } from '../image/raster.js';
import { ort } from '../models/session.js';
import type { ModelSession as Session } from '../models/timing.js';
import { ReusableBuffer, toPlanar } from './tensor.js';
import type { Detection, DetectorModel, InputNormalisation } from './types.js';

const STRIDES = [8, 16, 32] as const;
const NORM: InputNormalisation = { colorOrder: 'BGR', mean: [0, 0, 0], std: [1, 1, 1] };

/**
 * YuNet (libfacedetection.train): anchor-free, one prior per cell, score = sqrt(cls * obj).
 * BGR 0..255 input. Its landmark order is already left-to-right as seen in the image.
 */
export class YuNetDetector implements DetectorModel {
  readonly sizeMultiple = 32;
  private readonly input = new ReusableBuffer();
  constructor(
    readonly modelId: string,
    private readonly session: Session,
    readonly fixedSize?: readonly [number, number],
  ) {}

  async run(image: RgbImage, scoreThreshold: number, w = image.width, h = image.height): Promise<Detection[]> {
    const out = await this.input.use(3 * w * h, (data) =>
      this.session.run({ [this.session.inputNames[0]!]: new ort.Tensor('float32', toPlanar(image, NORM, w, h, data), [1, 3, h, w]) }),
    );
    const faces: Detection[] = [];
    for (const s of STRIDES) {
      const cls = out[`cls_${s}`]!.data as Float32Array;
      const obj = out[`obj_${s}`]!.data as Float32Array;
      const bbox = out[`bbox_${s}`]!.data as Float32Array;
      const kps = out[`kps_${s}`]!.data as Float32Array;
      const cols = Math.floor(w / s);
      for (let i = 0; i < cls.length; i++) {
        const score = Math.sqrt(clamp01(cls[i]!) * clamp01(obj[i]!));
        if (score < scoreThreshold) continue;
        const row = Math.floor(i / cols);
        const col = i % cols;
        const cx = (col + bbox[i * 4]!) * s;
        const cy = (row + bbox[i * 4 + 1]!) * s;
        const bw = Math.exp(bbox[i * 4 + 2]!) * s;
        const bh = Math.exp(bbox[i * 4 + 3]!) * s;
        const landmarks: [number, number][] = [];
        for (let k = 0; k < 5; k++) landmarks.push([(col + kps[i * 10 + 2 * k]!) * s, (row + kps[i * 10 + 2 * k + 1]!) * s]);
        faces.push({ box: { x: cx - bw / 2, y: cy - bh / 2, width: bw, height: bh }, score, landmarks });
      }
    }
    return faces;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}
