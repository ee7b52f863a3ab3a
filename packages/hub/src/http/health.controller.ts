import { Controller, Get, Inject } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Hub } from '../hub.js';
import { Public } from './auth.guard.js';
import { HUB } from './tokens.js';

@ApiTags('health')
@Controller()
export class HealthController {
  constructor(@Inject(HUB) private readonly hub: Hub) {}

  @Get('healthz')
  @Public()
  async health() {
    return { status: this.hub.broker.connected ? 'ok' : 'degraded', replica: this.hub.replicaId, leader: this.hub.leader, store: this.hub.store.engine, mqtt: this.hub.broker.url, mqttConnected: this.hub.broker.connected, ...(await this.hub.subjects.count()), events: await this.hub.events.count(), ingest: { ingested: this.hub.ingest.ingested, duplicates: this.hub.ingest.duplicates, dropped: this.hub.ingest.dropped } };
  }
}
