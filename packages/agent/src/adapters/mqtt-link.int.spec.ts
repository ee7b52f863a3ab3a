import { afterEach, describe, expect, it } from 'vitest';
import type { EventMessage } from '@facefleet/protocol';
import { Outbox } from '../components/outbox.js';
import type { AgentConfig } from '../config.js';
import { AckPeer, until } from '../testing/ack-peer.js';
import { freePort, TestBroker } from '../testing/broker.js';
import { openAgentDb } from './agent-db.js';
import { MqttLink } from './mqtt-link.js';

const quiet = { info: () => undefined, warn: () => undefined };
let n = 0;

function agent(url: string) {
  const deviceId = `dev-${process.pid}-${n++}`;
  const config = {
    deviceId,
    mqtt: { url, keepaliveS: 5 },
    outbox: { maxEvents: 1000, maxAgeMs: 3600_000, sendBatch: 50, retryMs: 300 },
    statusIntervalMs: 60_000,
  } as unknown as AgentConfig;
  const outbox = new Outbox(openAgentDb(':memory:'), config.outbox);
  const link = new MqttLink({
    config,
    agentVersion: 'test',
    due: (limit) => outbox.due(limit, config.outbox.retryMs),
    markSent: (ids) => outbox.markSent(ids),
    onAck: (ids) => void outbox.markDelivered(ids),
    onReconnect: () => outbox.resetInFlight(),
    status: () => ({ at: new Date().toISOString(), agentVersion: 'test', models: { detector: 'd', embedder: 'e' }, galleries: {}, outboxDepth: outbox.depth(), counters: {} }),
    log: quiet,
    onDrop: () => undefined,
  });
  const event = (i: number): EventMessage => ({
    id: `${deviceId}-event-${i}`, deviceId, type: 'recognition', subjectId: 's', subject: 'Ann', similarity: 0.5, at: new Date().toISOString(), modelId: 'm',
  });
  return { deviceId, outbox, link, event };
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
});

describe('MQTT link on a real in-process aedes broker', () => {
  it('delivers stored events and clears them only when the peer acknowledges', async () => {
    const broker = await TestBroker.start();
    cleanup.push(() => broker.stop());
    const peer = await AckPeer.connect(broker.url);
    cleanup.push(() => peer.close());
    peer.ack = false;
    const a = agent(broker.url);
    cleanup.push(() => a.link.stop());
    for (let i = 0; i < 5; i++) a.outbox.add(a.event(i));
    a.link.start();
    await until(() => peer.records.size === 5, 10_000, 'five events at the peer');
    await until(() => peer.states.get(a.deviceId)?.online === true, 5000, 'online state');
    // Broker PUBACKs are not enough: without the application ack everything stays pending.
    await new Promise((r) => setTimeout(r, 700));
    expect(a.outbox.depth()).toBe(5);
    expect(peer.deliveries).toBeGreaterThan(5); // resent after retryMs
    peer.ack = true;
    await until(() => a.outbox.depth() === 0, 10_000, 'outbox drained');
    expect(peer.records.size).toBe(5);
  });

  it('keeps every event while no broker exists, then delivers each once when one appears', async () => {
    const port = await freePort();
    const a = agent(`mqtt://127.0.0.1:${port}`);
    cleanup.push(() => a.link.stop());
    a.link.start();
    for (let i = 0; i < 20; i++) a.outbox.add(a.event(i));
    await new Promise((r) => setTimeout(r, 1500));
    expect(a.link.state).not.toBe('connected');
    expect(a.outbox.depth()).toBe(20);
    const broker = await TestBroker.start(port);
    cleanup.push(() => broker.stop());
    const peer = await AckPeer.connect(broker.url);
    cleanup.push(() => peer.close());
    await until(() => a.outbox.depth() === 0, 40_000, 'delivery after the broker appeared');
    expect([...peer.records.keys()].sort()).toEqual(Array.from({ length: 20 }, (_, i) => a.event(i).id).sort());
  });

  it('is marked offline by its retained last will when its connection dies', async () => {
    const broker = await TestBroker.start();
    cleanup.push(() => broker.stop());
    const peer = await AckPeer.connect(broker.url);
    cleanup.push(() => peer.close());
    const a = agent(broker.url);
    a.link.start();
    await until(() => peer.states.get(a.deviceId)?.online === true, 5000, 'online');
    // Cut the TCP connection under the client (no DISCONNECT packet): the broker publishes the will.
    const client = (a.link as unknown as { client: { options: { reconnectPeriod: number }; stream: { destroy(): void }; end(force: boolean): void } }).client;
    client.options.reconnectPeriod = 0;
    client.stream.destroy();
    await until(() => peer.states.get(a.deviceId)?.online === false, 10_000, 'offline will');
    client.end(true);
  });
});

describe('MQTT link on the Mosquitto server at 127.0.0.1:1883', () => {
  it('delivers and clears events through an external broker', async () => {
    const url = process.env.FACEFLEET_TEST_MOSQUITTO_URL ?? 'mqtt://127.0.0.1:1883';
    const peer = await AckPeer.connect(url);
    cleanup.push(() => peer.close());
    const a = agent(url);
    cleanup.push(() => a.link.stop());
    for (let i = 0; i < 3; i++) a.outbox.add(a.event(i));
    a.link.start();
    await until(() => a.outbox.depth() === 0, 10_000, 'delivery via mosquitto');
    expect([...peer.records.keys()].filter((k) => k.startsWith(a.deviceId))).toHaveLength(3);
  });
});
