import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { data, hasData } from '../../../../test/helpers.js';
import { FaceAnalyzer } from '../analyzer.js';
import { cosine } from '../embed/embedder.js';
import { dequantizeModel } from './dequantize.js';
import { findModel, modelsDir } from './manifest.js';

describe('dequantizeModel', () => {
  it('refuses a model without integer convolutions', () => {
    const yunet = readFileSync(join(modelsDir(), findModel('yunet-s-dynamic').file));
    expect(() => dequantizeModel(yunet)).toThrow(/no ConvInteger or MatMulInteger/);
  });

  it.runIf(hasData('faceapi_bbt'))('computes the same embeddings as the int8 original on real faces', async () => {
    const int8 = await FaceAnalyzer.open({ embedder: 'w600k-mbf-int8', threads: 1 });
    const fp32 = await FaceAnalyzer.open({ embedder: 'w600k-mbf-fp32', threads: 1 });
    try {
      const cosines: number[] = [];
      for (const p of ['amy', 'howard', 'penny', 'raj']) {
        const image = await int8.decode(data('faceapi_bbt', 'identities', p, `${p}1.png`));
        const faces = await int8.detect(image);
        const [a] = await int8.embed(faces.slice(0, 1));
        const [b] = await fp32.embed(faces.slice(0, 1));
        cosines.push(cosine(a!.embedding.vector, b!.embedding.vector));
      }
      // The int8 model rounds activations; the fp32 rewrite does not. Same function otherwise.
      expect(Math.min(...cosines)).toBeGreaterThan(0.97);
    } finally {
      await int8.close();
      await fp32.close();
    }
  });
});
