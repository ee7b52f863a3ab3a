import { Body, Controller, HttpCode, Inject, Post, UploadedFiles, UseInterceptors } from '@nestjs/common';
import { FileFieldsInterceptor } from '@nestjs/platform-express';
import { ApiConsumes, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { DecodeError } from '@facefleet/protocol';
import type { Hub } from '../hub.js';
import { MinRole } from './auth.guard.js';
import { HUB, type UploadedFile } from './tokens.js';

type Files = Record<string, UploadedFile[] | undefined> | undefined;

function one(files: Files, field: string): Uint8Array {
  const f = files?.[field]?.[0];
  if (!f) throw new DecodeError(`multipart field "${field}" with an image is required`);
  return f.buffer;
}

/** Cloud recognition for clients without an edge box. Reads only (viewer role); images are not kept. */
@ApiTags('recognition')
@ApiSecurity('apiKey')
@Controller('api/v1')
export class RecognitionController {
  constructor(@Inject(HUB) private readonly hub: Hub) {}

  @Post('detect')
  @MinRole('viewer')
  @HttpCode(200)
  @ApiConsumes('multipart/form-data')
  @ApiOperation({ summary: 'Faces in an image (field "image"): boxes, landmarks, scores, quality' })
  @UseInterceptors(FileFieldsInterceptor([{ name: 'image', maxCount: 1 }]))
  async detect(@UploadedFiles() files: Files) {
    const image = await this.hub.analyzer.decode(one(files, 'image'));
    const faces = await this.hub.analyzer.detect(image);
    return { image: { width: image.width, height: image.height }, faces: faces.map((f) => ({ box: f.box, score: f.score, landmarks: f.landmarks, quality: f.quality })) };
  }

  @Post('verify')
  @MinRole('viewer')
  @HttpCode(200)
  @ApiConsumes('multipart/form-data')
  @ApiOperation({ summary: 'Same person? Fields "imageA" and "imageB" (largest face of each)' })
  @UseInterceptors(FileFieldsInterceptor([{ name: 'imageA', maxCount: 1 }, { name: 'imageB', maxCount: 1 }]))
  verify(@UploadedFiles() files: Files) {
    return this.hub.verify(one(files, 'imageA'), one(files, 'imageB'));
  }

  @Post('recognize')
  @MinRole('viewer')
  @HttpCode(200)
  @ApiConsumes('multipart/form-data')
  @ApiOperation({ summary: 'Every face of an image (field "image") against a gallery (field "gallery", default: all subjects)' })
  @UseInterceptors(FileFieldsInterceptor([{ name: 'image', maxCount: 1 }]))
  recognize(@UploadedFiles() files: Files, @Body() body: { gallery?: string } | undefined) {
    return this.hub.recognize(one(files, 'image'), body?.gallery ?? 'default');
  }
}
