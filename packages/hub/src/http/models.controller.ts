import { createReadStream, statSync } from 'node:fs';
import { Body, Controller, Get, Headers, Inject, Param, Post, Res, UploadedFiles, UseInterceptors } from '@nestjs/common';
import { FileFieldsInterceptor } from '@nestjs/platform-express';
import { ApiConsumes, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { ConflictError, DecodeError } from '@facefleet/protocol';
import type { Hub } from '../hub.js';
import { DeviceOrViewer, MinRole } from './auth.guard.js';
import { HUB, type UploadedFile } from './tokens.js';

/** Largest model file accepted by upload. */
const MAX_MODEL_BYTES = 256 * 1024 * 1024;

@ApiTags('models')
@ApiSecurity('apiKey')
@Controller('api/v1/models')
export class ModelsController {
  constructor(@Inject(HUB) private readonly hub: Hub) {}

  @Post()
  @MinRole('admin')
  @ApiConsumes('multipart/form-data')
  @ApiOperation({ summary: 'Register a model: fields "file" (ONNX) and "manifest" (JSON: id, kind, family, input spec, embeddingSize, thresholds); it is loaded, self-tested and signed' })
  @UseInterceptors(FileFieldsInterceptor([{ name: 'file', maxCount: 1 }, { name: 'manifest', maxCount: 1 }], { limits: { fileSize: MAX_MODEL_BYTES, files: 2 } }))
  async upload(@UploadedFiles() files: Record<string, UploadedFile[] | undefined> | undefined, @Body() body: { manifest?: string } | undefined) {
    const file = files?.file?.[0];
    if (!file) throw new DecodeError('multipart field "file" with the ONNX model is required');
    // The manifest may come as a text field or as a file part.
    const manifest = body?.manifest ?? files?.manifest?.[0]?.buffer.toString('utf8');
    return this.hub.registry.view(await this.hub.registry.upload(file.buffer, manifest));
  }

  @Get()
  @ApiOperation({ summary: 'Every registered model (the project manifest\'s models the hub has files for, and uploads)' })
  async list() {
    return { items: (await this.hub.registry.list()).map((m) => this.hub.registry.view(m)) };
  }

  @Get('signing-key')
  @ApiOperation({ summary: 'The Ed25519 public key (PEM) that signs models; give it to agents as models.signingKey' })
  signingKey() {
    return { keyId: this.hub.registry.keyId, pem: this.hub.registry.publicKeyPem };
  }

  @Get(':id')
  async get(@Param('id') id: string) {
    return this.hub.registry.view(await this.hub.registry.get(id));
  }

  @Get(':id/file')
  @DeviceOrViewer()
  @ApiOperation({ summary: 'Download the model file (devices: Basic auth with their id and secret); resumable with Range: bytes=<from>-' })
  async file(@Param('id') id: string, @Headers('range') range: string | undefined, @Res() res: Response): Promise<void> {
    const m = await this.hub.registry.get(id);
    let size: number;
    try {
      size = statSync(m.path).size;
    } catch {
      throw new ConflictError(`model ${id}: its file is missing on the hub`);
    }
    res.setHeader('accept-ranges', 'bytes');
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('x-model-sha256', m.sha256);
    let start = 0;
    let end = size - 1;
    if (range !== undefined) {
      const r = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (r && (r[1] !== '' || r[2] !== '')) {
        if (r[1] === '') start = Math.max(0, size - Number(r[2]));
        else {
          start = Number(r[1]);
          if (r[2] !== '') end = Math.min(end, Number(r[2]));
        }
      }
      if (!r || start > end || start >= size) {
        res.status(416).setHeader('content-range', `bytes */${size}`);
        res.end();
        return;
      }
      res.status(206).setHeader('content-range', `bytes ${start}-${end}/${size}`);
    }
    res.setHeader('content-length', String(end - start + 1));
    createReadStream(m.path, { start, end }).pipe(res);
  }
}
