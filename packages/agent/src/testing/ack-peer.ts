import mqtt, { type MqttClient } from 'mqtt';
import { eventMessage, parseMessage, stateMessage, topics, type EventMessage, type StateMessage } from '@facefleet/protocol';

/**
 * A small stand-in for the hub on a real broker: records each event id once (its "records"),
 * counts every delivery, acknowledges what it stored, and keeps the devices' retained states.
 */
export class AckPeer {
  readonly records = new Map<string, EventMessage>();
  deliveries = 0;
  readonly states = new Map<string, StateMessage>();
  ack = true;
  private constructor(private readonly client: MqttClient) {}

  static async connect(url: string): Promise<AckPeer> {
    const client = await mqtt.connectAsync(url, { clientId: `ack-peer-${process.pid}-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 200 });
    const peer = new AckPeer(client);
    client.on('message', (topic, payload) => peer.onMessage(topic, payload));
    await client.subscribeAsync([topics.allDevices('events'), topics.allDevices('state')], { qos: 1 });
    return peer;
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (topic.endsWith('/state')) {
      const s = parseMessage(stateMessage, payload);
      if (s.ok) this.states.set(topic.split('/')[3]!, s.value);
      return;
    }
    const e = parseMessage(eventMessage, payload);
    if (!e.ok) return;
    this.deliveries++;
    if (!this.records.has(e.value.id)) this.records.set(e.value.id, e.value);
    if (this.ack) this.client.publish(topics.acks(e.value.deviceId), JSON.stringify({ ids: [e.value.id] }), { qos: 1 });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

export async function until(check: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
