import { Body, Controller, Get, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { Hub } from '../hub.js';
import { MinRole } from './auth.guard.js';
import { HUB } from './tokens.js';
import { jsonSchema, validate } from './validate.js';

const createRollout = z.strictObject({
  modelId: z.string().min(1),
  target: z.union([z.literal('all'), z.strictObject({ devices: z.array(z.string().min(1)).min(1) }), z.strictObject({ galleries: z.array(z.string().min(1)).min(1) })]),
  waves: z.array(z.number().gt(0).max(100)).min(1).max(20).optional(),
  gates: z
    .strictObject({
      maxFailureRate: z.number().min(0).max(1).optional(),
      soakSeconds: z.number().min(0).max(7 * 86_400).optional(),
      minHealthyPercent: z.number().min(0).max(100).optional(),
    })
    .optional(),
});

@ApiTags('rollouts')
@ApiSecurity('apiKey')
@Controller('api/v1/rollouts')
export class RolloutsController {
  constructor(@Inject(HUB) private readonly hub: Hub) {}

  @Post()
  @MinRole('admin')
  @ApiOperation({ summary: 'Roll a model out: target "all", {devices:[…]} or {galleries:[…]}; waves as cumulative percentages ending at 100; gates' })
  @ApiBody({ schema: jsonSchema(createRollout) })
  async create(@Body() body: unknown) {
    const b = validate(createRollout, body);
    const gates = b.gates ? Object.fromEntries(Object.entries(b.gates).filter(([, v]) => v !== undefined)) : undefined;
    const r = await this.hub.rollouts.create({ modelId: b.modelId, target: b.target, ...(b.waves ? { waves: b.waves } : {}), ...(gates ? { gates } : {}) });
    return this.hub.rollouts.view(r.id);
  }

  @Get()
  async list() {
    return { items: await this.hub.rolloutsRepo.list() };
  }

  @Get(':id')
  @ApiOperation({ summary: 'State of a rollout, per wave and per device' })
  get(@Param('id') id: string) {
    return this.hub.rollouts.view(id);
  }

  @Post(':id/pause')
  @MinRole('admin')
  @HttpCode(200)
  async pause(@Param('id') id: string) {
    return this.hub.rollouts.view((await this.hub.rollouts.pause(id)).id);
  }

  @Post(':id/resume')
  @MinRole('admin')
  @HttpCode(200)
  async resume(@Param('id') id: string) {
    return this.hub.rollouts.view((await this.hub.rollouts.resume(id)).id);
  }

  @Post(':id/abort')
  @MinRole('admin')
  @HttpCode(200)
  @ApiOperation({ summary: 'Stop: devices not yet running the model stay on their previous one' })
  async abort(@Param('id') id: string) {
    return this.hub.rollouts.view((await this.hub.rollouts.abort(id)).id);
  }

  @Post(':id/rollback')
  @MinRole('admin')
  @HttpCode(200)
  @ApiOperation({ summary: 'Every device of the rollout back on its previous model' })
  async rollback(@Param('id') id: string) {
    return this.hub.rollouts.view((await this.hub.rollouts.rollback(id)).id);
  }
}
