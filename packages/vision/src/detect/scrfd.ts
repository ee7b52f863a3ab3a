import type { RgbImage } from '../image/raster.js';
import { ort } from '../models/session.js';
import type { ModelSession as Session } from '../models/timing.js';
import { ReusableBuffer, toPlanar } from './tensor.js';
import type { Detection, DetectorModel, InputNormalisation } from './types.js';

const STRIDES = [8, 16, 32] as const;
const ANCHORS_PER_CELL = 2;
const NORM: InputNormalisation = { colorOrder: 'RGB', mean: [127.5, 127.5, 127.5], std: [128, 128, 128] };

/**
 * SCRFD (insightface): two anchors per cell, box = distances (l, t, r, b) x stride from the
 * anchor centre, sigmoid scores. RGB, (x - 127.5) / 128. Outputs are recognised by shape, since
 * their names differ between exports.
 */
export class ScrfdDetector implements DetectorModel {
  readonly sizeMultiple = 32;
  private readonly input = new ReusableBuffer();
  constructor(
    readonly modelId: string,
    private readonly session: Session,
  ) {}

  async run(image: RgbImage, scoreThreshold: number, w = image.width, h = image.height): Promise<Detection[]> {
    const out = await this.input.use(3 * w * h, (data) =>
      this.session.run({ [this.session.inputNames[0]!]: new ort.Tensor('float32', toPlanar(image, NORM, w, h, data), [1, 3, h, w]) }),
    );
    const byStride = new Map<number, { scores?: Float32Array; boxes?: Float32Array; kps?: Float32Array }>();
    for (const name of this.session.outputNames) {
      const t = out[name]!;
      const last = t.dims[t.dims.length - 1]!;
      const count = (t.data as Float32Array).length / last;
      const stride = STRIDES.find((s) => Math.floor(h / s) * Math.floor(w / s) * ANCHORS_PER_CELL === count);
      if (stride === undefined) continue;
      const entry = byStride.get(stride) ?? {};
      if (last === 1) entry.scores = t.data as Float32Array;
      else if (last === 4) entry.boxes = t.data as Float32Array;
      else if (last === 10) entry.kps = t.data as Float32Array;
      byStride.set(stride, entry);
    }
    const faces: Detection[] = [];
    for (const s of STRIDES) {
      const e = byStride.get(s);
      if (!e?.scores || !e.boxes || !e.kps) continue;
      const cols = Math.floor(w / s);
      for (let i = 0; i < e.scores.length; i++) {
        const score = e.scores[i]!;
        if (score < scoreThreshold) continue;
        const cell = Math.floor(i / ANCHORS_PER_CELL);
        const ax = (cell % cols) * s;
        const ay = Math.floor(cell / cols) * s;
        const x1 = ax - e.boxes[i * 4]! * s;
        const y1 = ay - e.boxes[i * 4 + 1]! * s;
        const x2 = ax + e.boxes[i * 4 + 2]! * s;
        const y2 = ay + e.boxes[i * 4 + 3]! * s;
        const landmarks: [number, number][] = [];
        for (let k = 0; k < 5; k++) landmarks.push([ax + e.kps[i * 10 + 2 * k]! * s, ay + e.kps[i * 10 + 2 * k + 1]! * s]);
        faces.push({ box: { x: x1, y: y1, width: x2 - x1, height: y2 - y1 }, score, landmarks });
      }
    }
    return faces;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
