import { eventMessage, parseDeviceTopic, parseMessage, stateMessage, statusMessage, topics } from '@facefleet/protocol';
import type { BrokerPort } from './mqtt/broker.js';
import type { DevicesRepository } from './store/devices.repository.js';
import type { EventsRepository } from './store/events.repository.js';
import type { SyncService } from './sync.service.js';

/**
 * Everything devices publish: events (stored once per id, then acknowledged so the agent can
 * clear its outbox), state (online/offline), status (sequences, models, outbox depth), sync
 * requests. Invalid payloads are logged and dropped; nothing a device sends can stop the hub.
 */
export class IngestService {
  dropped = 0;
  ingested = 0;
  duplicates = 0;

  constructor(
    private readonly broker: BrokerPort,
    private readonly devices: DevicesRepository,
    private readonly events: EventsRepository,
    private readonly sync: SyncService,
    private readonly log: (msg: string) => void,
  ) {}

  async start(): Promise<void> {
    await this.broker.subscribe(topics.allDevices('events'), (t, p) => void this.guard(t, () => this.onEvent(t, p)));
    await this.broker.subscribe(topics.allDevices('state'), (t, p) => void this.guard(t, () => this.onState(t, p)));
    await this.broker.subscribe(topics.allDevices('status'), (t, p) => void this.guard(t, () => this.onStatus(t, p)));
    await this.broker.subscribe(topics.allDevices('sync/request'), (t, p) => void this.guard(t, () => this.sync.onSyncRequest(parseDeviceTopic(t)!.deviceId, p)));
  }

  private async guard(topic: string, work: () => Promise<void> | void): Promise<void> {
    try {
      await work();
    } catch (err) {
      this.dropped++;
      this.log(`ingest: ${topic}: ${(err as Error).message}`);
    }
  }

  private drop(topic: string, reason: string): void {
    this.dropped++;
    this.log(`ingest: dropped a message on ${topic}: ${reason}`);
  }

  private async onEvent(topic: string, payload: Buffer): Promise<void> {
    const deviceId = parseDeviceTopic(topic)!.deviceId;
    const parsed = parseMessage(eventMessage, payload);
    if (!parsed.ok) return this.drop(topic, parsed.reason);
    if (parsed.value.deviceId !== deviceId) return this.drop(topic, `event claims device ${parsed.value.deviceId}`);
    if (this.events.insert(parsed.value)) this.ingested++;
    else this.duplicates++;
    // Acknowledge duplicates too: the agent resent because it never saw the first ack.
    await this.broker.publish(topics.acks(deviceId), JSON.stringify({ ids: [parsed.value.id] }), { qos: 1 });
  }

  private onState(topic: string, payload: Buffer): void {
    const deviceId = parseDeviceTopic(topic)!.deviceId;
    const parsed = parseMessage(stateMessage, payload);
    if (!parsed.ok) return this.drop(topic, parsed.reason);
    if (!this.devices.get(deviceId)) return;
    this.devices.setOnline(deviceId, parsed.value.online, parsed.value.agentVersion);
  }

  private onStatus(topic: string, payload: Buffer): void {
    const deviceId = parseDeviceTopic(topic)!.deviceId;
    const parsed = parseMessage(statusMessage, payload);
    if (!parsed.ok) return this.drop(topic, parsed.reason);
    if (!this.devices.get(deviceId)) return;
    this.devices.setStatus(deviceId, parsed.value);
    for (const [g, seq] of Object.entries(parsed.value.galleries)) this.devices.setSeq(deviceId, g, seq);
  }
}
