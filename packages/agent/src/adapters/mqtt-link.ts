import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ackMessage, parseMessage, topics, type EventMessage, type StatusMessage } from '@facefleet/protocol';
import type { AgentConfig } from '../config.js';

export type LinkState = 'disabled' | 'connecting' | 'connected' | 'offline';

export interface LinkDeps {
  config: AgentConfig;
  agentVersion: string;
  /** Events due for (re)sending, oldest first. */
  due: (limit: number) => EventMessage[];
  markSent: (ids: string[]) => void;
  onAck: (ids: string[]) => void;
  onReconnect: () => void;
  status: () => StatusMessage;
  log: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void };
  onDrop: (reason: string) => void;
  onState?: (state: LinkState) => void;
  /** Called after each (re)connect, once the link's own subscriptions are made. */
  onConnected?: () => void;
  /** Messages on topics other than acks (gallery sync, config). */
  onMessage?: (topic: string, payload: Buffer) => void;
}

/**
 * The device's MQTT connection (mqtt.js): client id = device id, a retained last will marking
 * the device offline, a retained online state on every connect, events at QoS 1, acks from the
 * hub clearing the outbox. Reconnects with exponential backoff (1 s .. 30 s).
 */
export class MqttLink {
  private client?: MqttClient;
  private timer?: NodeJS.Timeout;
  private statusTimer?: NodeJS.Timeout;
  private flushing = false;
  state: LinkState = 'disabled';
  connects = 0;

  constructor(private readonly d: LinkDeps) {}

  start(): void {
    const m = this.d.config.mqtt;
    if (!m) return;
    const id = this.d.config.deviceId;
    const options: IClientOptions = {
      clientId: id,
      clean: true,
      keepalive: m.keepaliveS,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      protocolVersion: 4,
      will: { topic: topics.state(id), payload: Buffer.from(JSON.stringify({ online: false, at: new Date().toISOString() })), qos: 1, retain: true },
    };
    if (m.username !== undefined) options.username = m.username;
    if (m.password !== undefined) options.password = m.password;
    if (m.ca !== undefined) options.ca = readFileSync(m.ca);
    if (m.cert !== undefined) options.cert = readFileSync(m.cert);
    if (m.key !== undefined) options.key = readFileSync(m.key);
    this.state = 'connecting';
    const client = mqtt.connect(m.url, options);
    this.client = client;
    let backoffMs = 1000;
    client.on('connect', () => {
      backoffMs = 1000;
      client.options.reconnectPeriod = backoffMs;
      this.state = 'connected';
      this.d.onState?.(this.state);
      this.connects++;
      this.d.log.info({ url: m.url }, 'mqtt connected');
      const online = { online: true, at: new Date().toISOString(), agentVersion: this.d.agentVersion };
      client.publish(topics.state(id), JSON.stringify(online), { qos: 1, retain: true });
      client.subscribe([topics.acks(id), topics.config(id), topics.syncChanges(id)], { qos: 1 });
      this.d.onReconnect();
      this.publishStatus();
      this.d.onConnected?.();
      void this.flush();
    });
    client.on('close', () => {
      if (this.state === 'connected') this.d.log.warn({}, 'mqtt connection lost');
      if (this.state !== 'disabled' && this.state !== 'offline') {
        this.state = 'offline';
        this.d.onState?.(this.state);
      }
      backoffMs = Math.min(30_000, backoffMs * 2);
      client.options.reconnectPeriod = backoffMs;
    });
    client.on('error', (err) => this.d.log.warn({ err: err.message }, 'mqtt error'));
    client.on('message', (topic, payload) => {
      if (topic !== topics.acks(id)) {
        this.d.onMessage?.(topic, payload);
        return;
      }
      const parsed = parseMessage(ackMessage, payload);
      if (!parsed.ok) {
        this.d.onDrop(`ack: ${parsed.reason}`);
        return;
      }
      this.d.onAck(parsed.value.ids);
    });
    this.timer = setInterval(() => void this.flush(), this.d.config.outbox.retryMs);
    this.statusTimer = setInterval(() => this.publishStatus(), this.d.config.statusIntervalMs);
  }

  /** Send what is due. Called on connect, after each new event, and on a timer. */
  async flush(): Promise<void> {
    const client = this.client;
    if (!client?.connected || this.flushing) return;
    this.flushing = true;
    try {
      const id = this.d.config.deviceId;
      for (;;) {
        const batch = this.d.due(this.d.config.outbox.sendBatch);
        if (batch.length === 0 || !client.connected) break;
        await Promise.all(batch.map((e) => client.publishAsync(topics.events(id), JSON.stringify(e), { qos: 1 })));
        this.d.markSent(batch.map((e) => e.id));
      }
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'publish failed; will retry');
    } finally {
      this.flushing = false;
    }
  }

  publish(topic: string, payload: string): void {
    if (this.client?.connected) this.client.publish(topic, payload, { qos: 1 });
  }

  subscribe(topic: string): void {
    this.client?.subscribe(topic, { qos: 1 });
  }

  unsubscribe(topic: string): void {
    this.client?.unsubscribe(topic);
  }

  publishStatus(): void {
    if (!this.client?.connected) return;
    this.client.publish(topics.status(this.d.config.deviceId), JSON.stringify(this.d.status()), { qos: 0 });
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.statusTimer);
    const client = this.client;
    if (!client) return;
    if (client.connected) {
      const offline = { online: false, at: new Date().toISOString(), agentVersion: this.d.agentVersion };
      await client.publishAsync(topics.state(this.d.config.deviceId), JSON.stringify(offline), { qos: 1, retain: true }).catch(() => undefined);
    }
    this.state = 'disabled';
    await client.endAsync();
  }
}
