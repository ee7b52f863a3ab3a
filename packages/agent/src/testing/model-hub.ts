import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { modelManifest, modelRef, signModel, type ModelRef, type SelfTestSpec } from '@facefleet/protocol';
import { findModel, makeSelfTest, modelFile } from '@facefleet/vision';

/**
 * The hub's model side, played by a test: an HTTP server for model files (wants the device's
 * Basic credentials, honours `Range: bytes=N-`, can cut a response half-way), and references
 * signed with a generated Ed25519 key.
 */
export class ModelHub {
  readonly key: KeyObject;
  readonly publicKeyPem: string;
  readonly files = new Map<string, Buffer>();
  readonly requests: { path: string; range?: string; auth?: string }[] = [];
  /** Names whose next full response is cut half-way (the connection dies). */
  readonly cutOnce = new Set<string>();
  private readonly selfTests = new Map<string, SelfTestSpec>();
  private server?: Server;
  port = 0;

  constructor(
    private readonly dir: string,
    private readonly credentials: { username: string; password: string },
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    this.key = privateKey;
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  async start(): Promise<void> {
    const expected = `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
    const server = createServer((req, res) => {
      const name = decodeURIComponent((req.url ?? '').replace(/^\/models\//, ''));
      this.requests.push({ path: name, ...(req.headers.range !== undefined ? { range: req.headers.range } : {}), ...(req.headers.authorization !== undefined ? { auth: req.headers.authorization } : {}) });
      if (req.headers.authorization !== expected) return void res.writeHead(401).end();
      const body = this.files.get(name);
      if (!body) return void res.writeHead(404).end();
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (m) {
        const start = Number(m[1]);
        if (start >= body.length) return void res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        res.writeHead(206, { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, 'content-length': body.length - start });
        return void res.end(body.subarray(start));
      }
      res.writeHead(200, { 'content-length': body.length });
      if (this.cutOnce.delete(name)) {
        res.write(body.subarray(0, Math.floor(body.length / 2)), () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      }
      res.end(body);
    });
    this.server = server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    this.port = (server.address() as AddressInfo).port;
  }

  url(name: string): string {
    return `http://127.0.0.1:${this.port}/models/${name}`;
  }

  /**
   * Register a model this device has never seen: the project's file of `id` with a protobuf
   * doc_string field (ModelProto field 6) appended: the same network, other bytes, another
   * sha256, as a model uploaded to the hub would be (the project's own files would be found on
   * the device without a download). Served under `id`; returns its path.
   */
  register(id: string): string {
    mkdirSync(this.dir, { recursive: true });
    const path = join(this.dir, `${id}.onnx`);
    const note = Buffer.from(`registered on the hub: ${id}`);
    const bytes = Buffer.concat([readFileSync(modelFile(findModel(id))), Buffer.from([0x32, note.length]), note]);
    writeFileSync(path, bytes);
    this.files.set(id, bytes);
    return path;
  }

  /**
   * A reference as the hub signs it, parsed as the wire delivers it: the manifest entry of `id`
   * for `file` (default: the project's file), its self-test made from that file. The options
   * make bad references: another key, a wrong sha256 or self-test (signed as given).
   */
  async ref(id: string, o: { file?: string; key?: KeyObject; sha256?: string; selfTest?: SelfTestSpec } = {}): Promise<ModelRef> {
    const entry = findModel(id);
    const file = o.file ?? modelFile(entry);
    let selfTest = this.selfTests.get(file);
    if (!selfTest) {
      selfTest = await makeSelfTest(file, entry);
      this.selfTests.set(file, selfTest);
    }
    const sha256 = o.sha256 ?? createHash('sha256').update(readFileSync(file)).digest('hex');
    const signed = { id, kind: entry.kind, sha256, bytes: statSync(file).size, manifest: modelManifest.parse(entry), selfTest: o.selfTest ?? selfTest };
    return modelRef.parse(JSON.parse(JSON.stringify({ ...signed, url: this.url(id), ...signModel(signed, o.key ?? this.key) })));
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }
}
