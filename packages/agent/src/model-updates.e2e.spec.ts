import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelReportMessage, parseMessage, statusMessage, topics, type ModelReportMessage, type ModelRef, type StatusMessage } from '@facefleet/protocol';
import { metrics, startAgent, writeYaml, type AgentProcess } from '../../../test/agent-process.js';
import { until } from './testing/ack-peer.js';
import { TestBroker } from './testing/broker.js';
import { ModelHub } from './testing/model-hub.js';

/**
 * The agent as a real process (the built CLI) following a retained config on a real broker: it
 * downloads the assigned detector from a real HTTP server with its device credentials, checks and
 * switches to it, says so in its reports and status, keeps it across a restart, and stops with
 * exit code 75 when its memory stays over maxRssMb.
 */
describe('agent process: fleet model updates over MQTT', () => {
  const deviceId = 'upd-cam';
  const dir = mkdtempSync(join(tmpdir(), 'agent-models-e2e-'));
  const hub = new ModelHub(join(dir, 'hub'), { username: deviceId, password: 's3cret' });
  let broker: TestBroker;
  let peer: MqttClient;
  let ref: ModelRef;
  const reports: ModelReportMessage[] = [];
  const statuses: StatusMessage[] = [];
  const agents: AgentProcess[] = [];

  const yaml = (extra = ''): string =>
    writeYaml(
      join(dir, 'agent.yaml'),
      `deviceId: ${deviceId}\ndataDir: ${dir}/data\nsources: []\nmqtt: {url: "${broker.url}", username: ${deviceId}, password: s3cret}\nrecognition: {threads: 1}\nstatusIntervalMs: 500\n${extra}`,
    );

  beforeAll(async () => {
    broker = await TestBroker.start();
    await hub.start();
    ref = await hub.ref('scrfd-2.5g', { file: hub.register('scrfd-2.5g') });
    peer = await mqtt.connectAsync(broker.url, { clientId: `hub-${process.pid}` });
    peer.on('message', (topic, payload) => {
      if (topic === topics.models(deviceId)) {
        const r = parseMessage(modelReportMessage, payload);
        if (r.ok) reports.push(r.value);
      } else {
        const s = parseMessage(statusMessage, payload);
        if (s.ok) statuses.push(s.value);
      }
    });
    await peer.subscribeAsync([topics.models(deviceId), topics.status(deviceId)], { qos: 1 });
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) if (a.proc.exitCode === null) await a.stop('SIGKILL');
    await peer?.endAsync(true);
    await broker?.stop();
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('switches to an assigned detector, keeps it across a restart, and exits 75 over maxRssMb', async () => {
    const first = await startAgent(yaml());
    agents.push(first);
    await until(() => statuses.some((s) => s.models.detector === 'scrfd-500m'), 20_000, 'the first status');
    // The hub assigns scrfd-2.5g (its config is retained) and sends its signing key (trusted on first use).
    await peer.publishAsync(topics.config(deviceId), JSON.stringify({ galleries: [], rolloutId: 'roll-1', models: { detector: ref }, signingKey: hub.publicKeyPem }), { qos: 1, retain: true });
    await until(() => reports.some((r) => r.state === 'active' || r.state === 'failed'), 30_000, 'the update to finish');
    expect(reports.map((r) => [r.rolloutId, r.kind, r.modelId, r.state])).toEqual([
      ['roll-1', 'detector', 'scrfd-2.5g', 'downloading'],
      ['roll-1', 'detector', 'scrfd-2.5g', 'verifying'],
      ['roll-1', 'detector', 'scrfd-2.5g', 'testing'],
      ['roll-1', 'detector', 'scrfd-2.5g', 'active'],
    ]);
    expect(hub.requests.map((r) => r.auth)).toEqual([`Basic ${Buffer.from(`${deviceId}:s3cret`).toString('base64')}`]);
    await until(() => statuses.at(-1)?.models.detector === 'scrfd-2.5g', 5_000, 'a status with the new detector');
    expect(await metrics(first.port)).toContain('facefleet_model_info{detector="scrfd-2.5g",embedder="w600k-mbf-fp32"} 1');
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(first.stderr()).toMatch(/model signing key trusted on first use/);

    // Restarted (with a memory limit it is over): it runs the recorded model without downloading it again.
    statuses.length = 0;
    const second = await startAgent(yaml('maxRssMb: 40\n'));
    agents.push(second);
    await until(() => statuses.length > 0, 20_000, 'a status after the restart');
    expect(statuses[0]!.models).toEqual({ detector: 'scrfd-2.5g', embedder: 'w600k-mbf-fp32' });
    expect(second.stderr()).toMatch(/running the hub-assigned model recorded in models.active/);
    expect(await second.exited).toBe(75);
    expect(second.stderr()).toMatch(/resident memory stayed over maxRssMb/);
    expect(second.stderr()).toMatch(/stopped at the memory limit \(maxRssMb 40\); exit 75/);
    expect(reports).toHaveLength(4); // the retained assignment was delivered again: nothing to do
    expect(hub.requests).toHaveLength(1);
  }, 90_000);
});
