import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query, UploadedFiles, UseInterceptors } from '@nestjs/common';
import { FilesInterceptor } from '@nestjs/platform-express';
import { ApiBody, ApiConsumes, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { DecodeError } from '@facefleet/protocol';
import type { Hub } from '../hub.js';
import { HUB, type UploadedFile } from './tokens.js';
import { cursorCodec, isoDate, jsonSchema, validate } from './validate.js';

const createSubject = z.strictObject({
  name: z.string().trim().min(1).max(200),
  consentAt: isoDate.nullable().optional(),
  purpose: z.string().max(500).nullable().optional(),
  deleteAfter: isoDate.nullable().optional(),
});
const updateSubject = createSubject.partial();
const listQuery = z.strictObject({ search: z.string().max(200).optional(), limit: z.coerce.number().int().min(1).max(1000).default(50), cursor: z.string().optional() });

@ApiTags('subjects')
@ApiSecurity('apiKey')
@Controller('api/v1/subjects')
export class SubjectsController {
  constructor(@Inject(HUB) private readonly hub: Hub) {}

  @Post()
  @ApiOperation({ summary: 'Create a subject (a person), with optional consent and retention fields' })
  @ApiBody({ schema: jsonSchema(createSubject) })
  create(@Body() body: unknown) {
    return this.hub.subjects.create(validate(createSubject, body));
  }

  @Get()
  @ApiOperation({ summary: 'List subjects by name (search, limit, cursor)' })
  async list(@Query() query: unknown) {
    const q = validate(listQuery, query, 'query');
    const after = q.cursor !== undefined ? cursorCodec.decode(q.cursor) : undefined;
    const items = await this.hub.subjects.list({ ...(q.search !== undefined ? { search: q.search } : {}), limit: q.limit + 1, ...(after ? { after: { name: after[0]!, id: after[1]! } } : {}) });
    const page = items.slice(0, q.limit);
    const last = page.at(-1);
    return { items: page, next: items.length > q.limit && last ? cursorCodec.encode([last.name, last.id]) : null };
  }

  @Get(':id')
  get(@Param('id') id: string) {
    return this.hub.subject(id);
  }

  @Patch(':id')
  @ApiBody({ schema: jsonSchema(updateSubject) })
  async update(@Param('id') id: string, @Body() body: unknown) {
    const patch = validate(updateSubject, body);
    await this.hub.subject(id);
    const s = await this.hub.subjects.update(id, patch);
    if (patch.name !== undefined) await this.hub.sync.changed(id, 'upsert', await this.hub.galleries.galleriesOf(id));
    return s;
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Erase a subject: templates gone here and, through the sync log, from every device' })
  async remove(@Param('id') id: string): Promise<void> {
    await this.hub.deleteSubject(id);
  }

  @Post(':id/faces')
  @ApiOperation({ summary: 'Enrol face images (multipart field "images"); each is ok, noFace, multipleFaces or lowQuality. Photos are not kept.' })
  @ApiConsumes('multipart/form-data')
  @ApiBody({ schema: { type: 'object', properties: { images: { type: 'array', items: { type: 'string', format: 'binary' } } } } })
  @UseInterceptors(FilesInterceptor('images', 20))
  async faces(@Param('id') id: string, @UploadedFiles() files: UploadedFile[] | undefined) {
    if (!files || files.length === 0) throw new DecodeError('no images: send one or more files in the multipart field "images"');
    const results = await this.hub.enrolFaces(id, files.map((f) => ({ name: f.originalname, bytes: f.buffer })));
    return { results };
  }
}
