import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put } from '@nestjs/common';
import { ApiBody, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { ConflictError, NotFoundError } from '@facefleet/protocol';
import type { Hub } from '../hub.js';
import { HUB } from './tokens.js';
import { jsonSchema, validate } from './validate.js';

const createGallery = z.strictObject({ name: z.string().trim().min(1).max(200) });

@ApiTags('galleries')
@ApiSecurity('apiKey')
@Controller('api/v1/galleries')
export class GalleriesController {
  constructor(@Inject(HUB) private readonly hub: Hub) {}

  @Post()
  @ApiBody({ schema: jsonSchema(createGallery) })
  async create(@Body() body: unknown) {
    const { name } = validate(createGallery, body);
    if ((await this.hub.galleries.list()).some((g) => g.name === name)) throw new ConflictError(`a gallery named "${name}" exists`);
    return this.hub.galleries.create(name);
  }

  @Get()
  async list() {
    return { items: await this.hub.galleries.list() };
  }

  @Get(':id')
  async get(@Param('id') id: string) {
    const g = await this.hub.galleries.get(id);
    if (!g) throw new NotFoundError(`no gallery with id ${id}`);
    return { ...g, subjects: await this.hub.galleries.members(id) };
  }

  @Put(':id/subjects/:subjectId')
  async add(@Param('id') id: string, @Param('subjectId') subjectId: string) {
    await this.hub.addToGallery(id, subjectId);
    return { galleryId: id, subjectId, headSeq: await this.hub.galleries.head(id) };
  }

  @Delete(':id/subjects/:subjectId')
  @HttpCode(204)
  async remove(@Param('id') id: string, @Param('subjectId') subjectId: string): Promise<void> {
    await this.hub.removeFromGallery(id, subjectId);
  }
}
