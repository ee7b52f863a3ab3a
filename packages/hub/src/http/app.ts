import 'reflect-metadata';
import { Module, type DynamicModule, type INestApplication, type LoggerService } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { MulterModule, type NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { ConfigError } from '@facefleet/protocol';
import type { Hub } from '../hub.js';
import { ApiKeyGuard } from './auth.guard.js';
import { DevicesController } from './devices.controller.js';
import { ErrorsFilter } from './errors.filter.js';
import { EventsController } from './events.controller.js';
import { GalleriesController } from './galleries.controller.js';
import { HealthController } from './health.controller.js';
import { ModelsController } from './models.controller.js';
import { RecognitionController } from './recognition.controller.js';
import { RolloutsController } from './rollouts.controller.js';
import { SubjectsController } from './subjects.controller.js';
import { HUB } from './tokens.js';

@Module({})
class HubModule {
  static with(hub: Hub): DynamicModule {
    return {
      module: HubModule,
      // Upload limits for every multipart route (413 beyond them); files stay in memory, never on disk.
      imports: [MulterModule.register({ limits: { fileSize: hub.config.maxUploadBytes, files: 20 } })],
      controllers: [HealthController, SubjectsController, GalleriesController, DevicesController, EventsController, RecognitionController, ModelsController, RolloutsController],
      providers: [{ provide: HUB, useValue: hub }, { provide: APP_GUARD, useClass: ApiKeyGuard }],
    };
  }
}

/** Nest's own warnings and errors in the hub's log, plain (no colours, no Nest banner). */
class NestLog implements LoggerService {
  /** While listening: a failure is reported once, by startHttp, as a ConfigError. */
  quiet = false;
  constructor(private readonly sink: (msg: string) => void) {}
  private line(level: string, message: unknown, rest: unknown[]): void {
    const text = message instanceof Error ? message.message : String(message);
    if (this.quiet) return;
    const context = rest.at(-1);
    this.sink(`${level}${typeof context === 'string' && context !== '' ? ` [${context}]` : ''}: ${text}`);
  }
  log(): void {}
  error(message: unknown, ...rest: unknown[]): void {
    this.line('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.line('warning', message, rest);
  }
}

/** The HTTP side: Nest on express, /api/v1 routes, OpenAPI at /api/openapi.json and UI at /api/docs. */
export async function startHttp(hub: Hub): Promise<{ app: INestApplication; port: number }> {
  const nestLog = new NestLog(hub.log);
  const app = await NestFactory.create<NestExpressApplication>(HubModule.with(hub), { logger: nestLog, bodyParser: false });
  app.useBodyParser('json', { limit: '1mb' });
  app.useGlobalFilters(new ErrorsFilter(hub.log));
  const doc = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('facefleet hub')
      .setDescription('Admin API: subjects, faces, galleries, devices, events, models and rollouts; cloud recognition. Keys: x-api-key or Authorization: Bearer.')
      .setVersion('0.1.0')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'x-api-key' }, 'apiKey')
      .build(),
  );
  SwaggerModule.setup('api/docs', app, doc, { jsonDocumentUrl: 'api/openapi.json' });
  try {
    nestLog.quiet = true;
    await app.listen(hub.config.port, hub.config.host);
  } catch (err) {
    await app.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new ConfigError(`HTTP port ${hub.config.port} on ${hub.config.host} is already in use (choose another with --port)`);
    if (code !== undefined) throw new ConfigError(`cannot listen for HTTP on ${hub.config.host}:${hub.config.port} (${code}: ${(err as Error).message}); check --host and --port`);
    throw err;
  } finally {
    nestLog.quiet = false;
  }
  const address = app.getHttpServer().address() as { port: number };
  return { app, port: address.port };
}
