import { eventMessage, modelReportMessage, parseDeviceTopic, parseMessage, stateMessage, statusMessage, topics, type EventMessage } from '@facefleet/protocol';
import type { BrokerPort } from './mqtt/broker.js';
import type { DevicesRepo, EventsRepo } from './store/ports.js';
import type { RolloutsService } from './rollouts.service.js';
import type { SyncService } from './sync.service.js';

/**
 * Everything devices publish: events (stored once per id, then acknowledged so the agent can
 * clear its outbox), state (online/offline), status (sequences, models, outbox depth), sync
 * requests. Invalid payloads are logged and dropped; nothing a device sends can stop the hub.
 *
 * Events are stored in micro-batches: whatever arrived while the previous batch was written goes
 * into the next transaction (at most MAX_BATCH), and acknowledgements go out after the commit,
 * one message per device and batch. An event is never acknowledged before it is on disk.
 */
/** Events per transaction at most (the ack message schema allows 10,000 ids). */
const MAX_BATCH = 2000;

export class IngestService {
  dropped = 0;
  ingested = 0;
  duplicates = 0;
  private pending: EventMessage[] = [];
  /** Devices known to be registered and not revoked, until the time given (ms). */
  private readonly known = new Map<string, number>();
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly broker: BrokerPort,
    private readonly devices: DevicesRepo,
    private readonly events: EventsRepo,
    private readonly sync: SyncService,
    private readonly log: (msg: string) => void,
    private readonly rollouts?: RolloutsService,
  ) {}

  async start(): Promise<void> {
    await this.broker.subscribe(topics.allDevices('events'), (t, p) => void this.guard(t, () => this.onEvent(t, p)));
    await this.broker.subscribe(topics.allDevices('state'), (t, p) => void this.guard(t, () => this.onState(t, p)));
    await this.broker.subscribe(topics.allDevices('status'), (t, p) => void this.guard(t, () => this.onStatus(t, p)));
    await this.broker.subscribe(topics.allDevices('models'), (t, p) => void this.guard(t, () => this.onModelReport(t, p)));
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
    if (!(await this.isKnown(deviceId))) return this.drop(topic, 'no such device here (unknown or revoked)');
    this.pending.push(parsed.value);
    if (this.flushing === undefined) this.flushing = new Promise((r) => setImmediate(r)).then(() => this.flush());
    await this.flushing;
  }

  /**
   * Events only from registered, live devices: the embedded broker already refuses others, but an
   * external broker shared with other systems may not. Checked once per device per 30 s.
   */
  private async isKnown(deviceId: string): Promise<boolean> {
    if ((this.known.get(deviceId) ?? 0) > Date.now()) return true;
    const d = await this.devices.get(deviceId);
    if (!d || d.revokedAt !== null) return false;
    this.known.set(deviceId, Date.now() + 30_000);
    return true;
  }

  /** Write what is pending, acknowledge it, and go on while more arrived meanwhile. */
  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, MAX_BATCH);
        let stored: boolean[];
        try {
          stored = await this.events.insertMany(batch);
        } catch (err) {
          // Not acknowledged: the agents keep these in their outboxes and send them again.
          this.dropped += batch.length;
          this.log(`ingest: could not store ${batch.length} events (${(err as Error).message}); they stay unacknowledged`);
          continue;
        }
        const acks = new Map<string, string[]>();
        batch.forEach((e, i) => {
          if (stored[i]) this.ingested++;
          else this.duplicates++;
          // Acknowledge duplicates too: the agent resent because it never saw the first ack.
          const ids = acks.get(e.deviceId) ?? [];
          ids.push(e.id);
          acks.set(e.deviceId, ids);
        });
        await Promise.all([...acks].map(([deviceId, ids]) => this.broker.publish(topics.acks(deviceId), JSON.stringify({ ids }), { qos: 1 })));
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async onModelReport(topic: string, payload: Buffer): Promise<void> {
    const deviceId = parseDeviceTopic(topic)!.deviceId;
    const parsed = parseMessage(modelReportMessage, payload);
    if (!parsed.ok) return this.drop(topic, parsed.reason);
    if (!(await this.devices.get(deviceId))) return;
    this.log(`models: ${deviceId}: ${parsed.value.kind} ${parsed.value.modelId} ${parsed.value.state}${parsed.value.reason ? ` (${parsed.value.reason})` : ''}`);
    await this.rollouts?.onReport(deviceId, parsed.value);
  }

  private async onState(topic: string, payload: Buffer): Promise<void> {
    const deviceId = parseDeviceTopic(topic)!.deviceId;
    const parsed = parseMessage(stateMessage, payload);
    if (!parsed.ok) return this.drop(topic, parsed.reason);
    if (!(await this.devices.get(deviceId))) return;
    await this.devices.setOnline(deviceId, parsed.value.online, parsed.value.agentVersion);
  }

  private async onStatus(topic: string, payload: Buffer): Promise<void> {
    const deviceId = parseDeviceTopic(topic)!.deviceId;
    const parsed = parseMessage(statusMessage, payload);
    if (!parsed.ok) return this.drop(topic, parsed.reason);
    if (!(await this.devices.get(deviceId))) return;
    await this.devices.setStatus(deviceId, parsed.value);
  }
}
