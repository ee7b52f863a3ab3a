import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { Hub } from '../hub.js';
import { MinRole } from './auth.guard.js';
import { HUB } from './tokens.js';
import { jsonSchema, validate } from './validate.js';

const createDevice = z.strictObject({ name: z.string().trim().min(1).max(200), galleries: z.array(z.string()).optional() });
const updateDevice = z.strictObject({ name: z.string().trim().min(1).max(200).optional(), galleries: z.array(z.string()).optional() });

@ApiTags('devices')
@ApiSecurity('apiKey')
@Controller('api/v1/devices')
export class DevicesController {
  constructor(@Inject(HUB) private readonly hub: Hub) {}

  @Post()
  @MinRole('admin')
  @ApiOperation({ summary: 'Register a device; the secret is shown once (MQTT username = id, password = secret)' })
  @ApiBody({ schema: jsonSchema(createDevice) })
  async create(@Body() body: unknown) {
    const b = validate(createDevice, body);
    const { device, secret } = await this.hub.devices.create(b.name);
    if (b.galleries) await this.hub.assignGalleries(device.id, b.galleries);
    else await this.hub.sync.publishConfig(device.id);
    return { ...(await this.hub.deviceStatus(device.id)), secret, mqtt: { url: this.hub.broker.url, username: device.id } };
  }

  @Get()
  async list() {
    const items = [];
    for (const d of await this.hub.devices.list()) items.push(await this.hub.deviceStatus(d.id));
    return { items };
  }

  @Get(':id')
  @ApiOperation({ summary: 'Live status: online, last seen, gallery sequence against head (synced), models, agent version, outbox depth' })
  get(@Param('id') id: string) {
    return this.hub.deviceStatus(id);
  }

  @Patch(':id')
  @ApiBody({ schema: jsonSchema(updateDevice) })
  async update(@Param('id') id: string, @Body() body: unknown) {
    const b = validate(updateDevice, body);
    await this.hub.deviceStatus(id);
    if (b.name !== undefined) await this.hub.devices.rename(id, b.name);
    if (b.galleries !== undefined) await this.hub.assignGalleries(id, b.galleries);
    return this.hub.deviceStatus(id);
  }

  @Post(':id/revoke')
  @MinRole('admin')
  @ApiOperation({ summary: 'Revoke a device: its credentials stop working at once and its connection is cut' })
  async revoke(@Param('id') id: string) {
    await this.hub.revokeDevice(id);
    return this.hub.deviceStatus(id);
  }

  @Delete(':id')
  @MinRole('admin')
  @HttpCode(204)
  async revokeByDelete(@Param('id') id: string): Promise<void> {
    await this.hub.revokeDevice(id);
  }
}
