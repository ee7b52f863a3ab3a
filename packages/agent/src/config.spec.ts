import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'agent-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (yaml: string): string => {
  const p = join(dir, `c${n++}.yaml`);
  writeFileSync(p, yaml);
  return p;
};

describe('agent config', () => {
  it('fills sensible defaults and resolves paths against the config file', () => {
    const c = loadConfig(file('deviceId: cam-1\ndataDir: ./data\nsources:\n  - {type: folder, path: in}\n'), {}, {});
    expect(c.dataDir).toBe(join(dir, 'data'));
    expect(c.sources).toEqual([{ type: 'folder', name: 'folder0', path: join(dir, 'in'), pollMs: 500 }]);
    expect(c.mqtt).toBeNull();
    expect(c.health.port).toBe(0);
    expect(c.recognition.unknownEvents).toBe(false);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('lets env override the file', () => {
    const c = loadConfig(file('deviceId: cam-1\ndataDir: d\nsources: []\n'), {}, { FACEFLEET_AGENT_MQTT_URL: 'mqtt://127.0.0.1:1999', FACEFLEET_AGENT_MQTT_PASSWORD: 's3cret', FACEFLEET_AGENT_DEVICE_ID: 'cam-9' });
    expect(c.deviceId).toBe('cam-9');
    expect(c.mqtt).toMatchObject({ url: 'mqtt://127.0.0.1:1999', password: 's3cret' });
  });

  it.each([
    ['dataDir: d\nsources: []\n', 'config: deviceId is required'],
    ['deviceId: a/b\ndataDir: d\nsources: []\n', 'deviceId must not contain'],
    ['deviceId: a\ndataDir: d\nsources: {}\n', 'sources must be a list'],
    ['deviceId: a\ndataDir: d\nsources:\n  - {type: usb}\n', 'sources[0].type must be folder, stream, snapshot or webcam, got "usb"'],
    ['deviceId: a\ndataDir: d\nsources:\n  - {type: stream}\n', 'sources[0].url is required'],
    ['deviceId: a\ndataDir: d\nsources: []\nhealth: {port: 70000}\n', 'health.port must be a number from 0 to 65535'],
    ['deviceId: a\ndataDir: d\nsources: []\nmqtt: {url: "http://x"}\n', 'mqtt.url must start with mqtt://'],
    ['deviceId: a\ndataDir: d\nsources: []\nmqtt: {url: "http://u:hunter2@x"}\n', 'got "http://***@x"'],
    ['deviceId: a\ndataDir: d\nsources: []\nmqtt: {url: "mqtt://door-1:hun#ter2@127.0.0.1:1"}\n', 'mqtt.url is not a valid URL (put credentials in mqtt.username and mqtt.password), got "mqtt://***@127.0.0.1:1"'],
    ['deviceId: a\ndataDir: d\nsources:\n  - {type: snapshot, url: "http://admin:pa#ss1@cam/s.jpg"}\n', 'sources[0].url must be an http:// or https:// URL, got "http://***@cam/s.jpg"'],
    ['deviceId: a\ndataDir: d\nsources:\n  - {type: snapshot, url: "rtsp://admin:hunter2@cam/1"}\n', 'sources[0].url must be an http:// or https:// URL, got "rtsp://***@cam/1"'],
    ['deviceId: a\ndataDir: d\nsources: []\nrecognition: {unknownEvents: "yes"}\n', 'recognition.unknownEvents must be true or false'],
    ['deviceId: a\ndataDir: d\nsources: []\ncamera: 1\n', 'unknown key "camera"'],
    ['deviceId: [a\n', 'is not valid YAML'],
    ['- just a list\n', 'must be a YAML mapping'],
    ['deviceId: a\ndataDir: d\nsources: []\nmaxRssMb: -1\n', 'maxRssMb must be a number from 0'],
    ['deviceId: a\ndataDir: d\nsources: []\nmodels: {signingKey: missing.pem}\n', 'models.signingKey: cannot read'],
    ['deviceId: a\ndataDir: d\nsources: []\nmodels: {signingKey: "-----BEGIN PUBLIC KEY-----\\nxx\\n-----END PUBLIC KEY-----"}\n', 'models.signingKey is not a PEM public key'],
    ['deviceId: a\ndataDir: d\nsources: []\nmodels: {baseUrl: "ftp://hub"}\n', 'models.baseUrl must start with http://'],
  ])('refuses %j with a message naming the field', (yaml, message) => {
    expect(() => loadConfig(file(yaml), {}, {})).toThrow(expect.objectContaining({ code: 'config', message: expect.stringContaining(message) as string }));
  });

  it('accepts the example config shipped in deploy/', () => {
    const c = loadConfig(join(import.meta.dirname, '..', '..', '..', 'deploy', 'agent', 'agent.example.yaml'), {}, {});
    expect(c.deviceId).toBe('door-1');
    expect(c.sources[0]).toMatchObject({ type: 'webcam', device: '/dev/video0' });
    expect(c.mqtt?.url).toBe('mqtts://hub.example.com:8883');
  });

  it('reads the model signing key from a PEM file or inline, Ed25519 only; memory watchdog off by default', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' });
    writeFileSync(join(dir, 'hub.pem'), pem);
    const fromFile = loadConfig(file('deviceId: a\ndataDir: d\nsources: []\nmodels: {signingKey: hub.pem}\nmaxRssMb: 600\n'), {}, {});
    expect(fromFile.models).toEqual({ signingKey: pem, galleryWaitMs: 120_000 });
    expect(fromFile.maxRssMb).toBe(600);
    expect(loadConfig(file(`deviceId: a\ndataDir: d\nsources: []\nmodels: {signingKey: ${JSON.stringify(pem)}}\n`), {}, {}).models.signingKey).toBe(pem);
    expect(loadConfig(file('deviceId: a\ndataDir: d\nsources: []\n'), {}, {}).maxRssMb).toBe(0);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' });
    expect(() => loadConfig(file(`deviceId: a\ndataDir: d\nsources: []\nmodels: {signingKey: ${JSON.stringify(rsa)}}\n`), {}, {})).toThrow(/must be an Ed25519 key, got rsa/);
  });

  it('says which file it cannot read', () => {
    expect(() => loadConfig(join(dir, 'missing.yaml'), {}, {})).toThrow(/cannot read config .*missing\.yaml \(ENOENT\)/);
  });
});
