import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ConfigError, ConflictError, DecodeError, keyIdOf, modelManifest, NotFoundError, signModel, type ModelRef } from '@facefleet/protocol';
import { loadManifest, makeSelfTest, modelsDir, type ModelEntry } from '@facefleet/vision';
import { readOrCreateSecret } from './secret-file.js';
import type { ModelRow, ModelsRepo } from './store/ports.js';

/** The hub's Ed25519 signing key (PKCS#8 PEM in the data dir, made on first start, readable by the owner only). */
export function loadSigningKey(dataDir: string): KeyObject {
  const path = join(dataDir, 'signing-key.pem');
  const pem = readOrCreateSecret(path, () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new ConfigError(`cannot read the hub's signing key ${path}: ${(err as Error).message}`);
  }
}

/** A registry row as the vision runtime's manifest entry. */
export function entryOf(m: ModelRow): ModelEntry {
  return { ...m.manifest, file: basename(m.path), sha256: m.sha256, bytes: m.bytes, licence: m.manifest.licence ?? 'unknown', sources: [] };
}

/**
 * The model registry: the project's manifest models the hub has files for, and models uploaded
 * through the API (kept under <dataDir>/models/<sha256>.onnx). Each is signed with the hub's
 * Ed25519 key over its id, kind, sha256, size, manifest and self-test (the output of a seeded
 * input computed here); devices check all of it before they run a model.
 */
export class ModelsService {
  readonly publicKey: KeyObject;

  constructor(
    private readonly repo: ModelsRepo,
    private readonly signingKey: KeyObject,
    private readonly dataDir: string,
    private readonly publicUrl: () => string,
    private readonly log: (msg: string) => void,
  ) {
    this.publicKey = createPublicKey(signingKey);
  }

  get keyId(): string {
    return keyIdOf(this.publicKey);
  }

  get publicKeyPem(): string {
    return this.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  /** List the manifest's models whose files are here (signed when first used). */
  async registerBuiltins(): Promise<void> {
    const dir = modelsDir();
    for (const e of loadManifest().models) {
      const path = join(dir, e.file);
      if ((await this.repo.get(e.id)) || !existsSync(path)) continue;
      const manifest = modelManifest.safeParse({ ...e, notes: e.notes?.slice(0, 2000) });
      if (!manifest.success) continue;
      await this.repo.insert({ id: e.id, kind: e.kind, sha256: e.sha256, bytes: e.bytes, manifest: manifest.data, selfTest: null, keyId: null, signature: null, source: 'manifest', path });
    }
  }

  list(): Promise<ModelRow[]> {
    return this.repo.list();
  }

  async get(id: string): Promise<ModelRow> {
    const m = await this.repo.get(id);
    if (!m) throw new NotFoundError(`no model with id ${id}`);
    return m;
  }

  /** Register an uploaded ONNX file with its manifest: validated, loaded, self-tested and signed. */
  async upload(bytes: Uint8Array, manifestText: string | undefined): Promise<ModelRow> {
    if (manifestText === undefined || manifestText.trim() === '') throw new DecodeError('multipart field "manifest" (the model\'s JSON manifest) is required');
    let json: unknown;
    try {
      json = JSON.parse(manifestText);
    } catch {
      throw new DecodeError('manifest is not valid JSON');
    }
    const parsed = modelManifest.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new DecodeError(`manifest.${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    const manifest = parsed.data;
    if (await this.repo.get(manifest.id)) throw new ConflictError(`a model with id ${manifest.id} is registered already`);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const dir = join(this.dataDir, 'models');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${sha256}.onnx`);
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes);
    let selfTest;
    try {
      selfTest = await makeSelfTest(tmp, { input: manifest.input });
    } catch (err) {
      rmSync(tmp, { force: true });
      throw new DecodeError(`the file is not a model this runtime can run with that manifest: ${(err as Error).message.split('\n')[0] ?? ''}`);
    }
    renameSync(tmp, path);
    const signed = { id: manifest.id, kind: manifest.kind, sha256, bytes: bytes.length, manifest, selfTest };
    const { keyId, signature } = signModel(signed, this.signingKey);
    if (!(await this.repo.insert({ ...signed, keyId, signature, source: 'upload', path }))) throw new ConflictError(`a model with id ${manifest.id} is registered already`);
    const row = await this.get(manifest.id);
    this.log(`models: registered ${row.id} (${row.kind}, ${row.bytes} bytes, sha256 ${row.sha256.slice(0, 12)}…)`);
    return row;
  }

  /** The model, self-tested and signed (done once, on first use, for the manifest's models). */
  async signed(id: string): Promise<ModelRow> {
    const m = await this.get(id);
    if (m.selfTest && m.signature && m.keyId) return m;
    if (!existsSync(m.path) || statSync(m.path).size !== m.bytes) throw new ConflictError(`model ${id}: its file ${m.path} is missing or has the wrong size`);
    const selfTest = await makeSelfTest(m.path, { input: m.manifest.input });
    const { keyId, signature } = signModel({ id: m.id, kind: m.kind, sha256: m.sha256, bytes: m.bytes, manifest: m.manifest, selfTest }, this.signingKey);
    await this.repo.setSigned(id, selfTest, keyId, signature);
    return this.get(id);
  }

  /** What a device is sent: the signed reference and where to download the file. */
  async ref(id: string): Promise<ModelRef> {
    const m = await this.signed(id);
    return { id: m.id, kind: m.kind, sha256: m.sha256, bytes: m.bytes, url: `${this.publicUrl()}/api/v1/models/${encodeURIComponent(m.id)}/file`, manifest: m.manifest, selfTest: m.selfTest!, keyId: m.keyId!, signature: m.signature! };
  }

  /** The public view of a model (no file path). */
  view(m: ModelRow) {
    return { id: m.id, kind: m.kind, family: m.manifest.family, sha256: m.sha256, bytes: m.bytes, source: m.source, signed: m.signature !== null, keyId: m.keyId, manifest: m.manifest, selfTest: m.selfTest, createdAt: m.createdAt };
  }
}
