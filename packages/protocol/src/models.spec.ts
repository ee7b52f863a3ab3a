import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, keyIdOf, modelManifest, signModel, verifyModelSignature, type ModelRef } from './models.js';

const manifest = modelManifest.parse({ id: 'det-x', kind: 'detector', family: 'scrfd', input: { name: 'input.1', shape: [1, 3, -1, -1], colorOrder: 'RGB', mean: [127.5, 127.5, 127.5], std: [128, 128, 128] } });

describe('model signatures', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');
  const base = { id: 'det-x', kind: 'detector' as const, sha256: 'a'.repeat(64), bytes: 1234, url: 'http://hub/api/v1/models/det-x/file', manifest, selfTest: { seed: 1, shape: [1, 3, 320, 320], tolerance: 0.999, output: [0.5, -0.25] } };
  const ref: ModelRef = { ...base, ...signModel(base, privateKey) };

  it('verifies with the signing key, whatever the download URL', () => {
    expect(ref.keyId).toBe(keyIdOf(publicKey));
    expect(verifyModelSignature(ref, [other.publicKey, publicKey])).toEqual({ ok: true });
    expect(verifyModelSignature({ ...ref, url: 'http://elsewhere/x' }, [publicKey])).toEqual({ ok: true });
  });

  it('refuses a changed hash, size, manifest or self-test, an unknown key and a forged signature', () => {
    expect(verifyModelSignature({ ...ref, sha256: 'b'.repeat(64) }, [publicKey])).toEqual({ ok: false, reason: 'bad signature' });
    expect(verifyModelSignature({ ...ref, bytes: 1235 }, [publicKey])).toEqual({ ok: false, reason: 'bad signature' });
    expect(verifyModelSignature({ ...ref, manifest: { ...manifest, scoreThreshold: 0.1 } }, [publicKey])).toEqual({ ok: false, reason: 'bad signature' });
    expect(verifyModelSignature({ ...ref, selfTest: { ...ref.selfTest, output: [0.5, -0.26] } }, [publicKey])).toEqual({ ok: false, reason: 'bad signature' });
    expect(verifyModelSignature(ref, [other.publicKey])).toEqual({ ok: false, reason: `signed with unknown key ${ref.keyId}` });
    const forged = { ...base, ...signModel(base, other.privateKey), keyId: ref.keyId };
    expect(verifyModelSignature(forged, [publicKey])).toEqual({ ok: false, reason: 'bad signature' });
    expect(verifyModelSignature({ ...ref, signature: 'not base64!' }, [publicKey])).toEqual({ ok: false, reason: 'bad signature' });
  });

  it('writes canonical JSON whatever the key order', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }], e: undefined })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
  });

  it('refuses manifests whose kind and family do not fit, or an embedder without its size', () => {
    expect(modelManifest.safeParse({ ...manifest, family: 'arcface' }).success).toBe(false);
    expect(modelManifest.safeParse({ ...manifest, kind: 'embedder', family: 'arcface' }).success).toBe(false);
    expect(modelManifest.safeParse({ ...manifest, kind: 'embedder', family: 'arcface', embeddingSize: 512 }).success).toBe(true);
    expect(modelManifest.safeParse({ ...manifest, id: '../etc/passwd' }).success).toBe(false);
  });
});
