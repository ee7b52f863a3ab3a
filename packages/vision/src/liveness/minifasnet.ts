import { cropResize, type Box, type RgbImage } from '../image/raster.js';
import { toPlanar } from '../detect/tensor.js';
import { ort } from '../models/session.js';
import type { ModelSession as Session } from '../models/timing.js';

export interface LivenessModel {
  session: Session;
  /** The detector box is scaled by this about its centre before the crop (2.7 or 4.0). */
  cropScale: number;
}

/**
 * Silent-Face-Anti-Spoofing (MiniFASNet) ensemble: each model sees an 80x80 BGR crop of the
 * scaled box; softmaxes are summed; class 1 is "real". Returns the real probability 0..1.
 */
export async function livenessScore(models: readonly LivenessModel[], image: RgbImage, box: Box): Promise<number> {
  let real = 0;
  for (const m of models) {
    const crop = await cropResize(image, scaleBox(box, m.cropScale, image), 80, 80);
    const data = toPlanar(crop, { colorOrder: 'BGR', mean: [0, 0, 0], std: [1, 1, 1] });
    const out = await m.session.run({ [m.session.inputNames[0]!]: new ort.Tensor('float32', data, [1, 3, 80, 80]) });
    const logits = out[m.session.outputNames[0]!]!.data as Float32Array;
    real += softmax(logits)[1] ?? 0;
  }
  return models.length === 0 ? 1 : real / models.length;
}

/** As the reference implementation: scale about the centre, shifted back inside the image. */
function scaleBox(box: Box, scale: number, image: RgbImage): Box {
  const s = Math.min(scale, (image.height - 1) / box.height, (image.width - 1) / box.width);
  const w = box.width * s, h = box.height * s;
  const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
  const x = Math.min(Math.max(0, cx - w / 2), image.width - w);
  const y = Math.min(Math.max(0, cy - h / 2), image.height - h);
  return { x, y, width: w, height: h };
}

function softmax(v: Float32Array): number[] {
  const max = Math.max(...v);
  const e = Array.from(v, (x) => Math.exp(x - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}
