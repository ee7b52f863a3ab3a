import { Controller, Get, Header, Inject, Query } from '@nestjs/common';
import { ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { Hub } from '../hub.js';
import type { EventFilter, EventRow } from '../store/events.repository.js';
import { HUB } from './tokens.js';
import { cursorCodec, isoDate, validate } from './validate.js';

const query = z.strictObject({
  subject: z.string().optional(),
  device: z.string().optional(),
  type: z.enum(['recognition', 'unknown']).optional(),
  from: isoDate.optional(),
  to: isoDate.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().optional(),
});

const item = (e: EventRow) => ({ id: e.id, deviceId: e.deviceId, type: e.type, subject: e.subject, subjectId: e.subjectId, similarity: e.similarity, at: e.at, receivedAt: e.receivedAt });

@ApiTags('events')
@ApiSecurity('apiKey')
@Controller('api/v1')
export class EventsController {
  constructor(@Inject(HUB) private readonly hub: Hub) {}

  @Get('events')
  @ApiOperation({ summary: 'Events, newest first; filter by subject (id or name), device, type, time range; paginated by cursor' })
  async list(@Query() raw: unknown) {
    const q = validate(query, raw, 'query');
    const after = q.cursor !== undefined ? cursorCodec.decode(q.cursor) : undefined;
    const rows = await this.hub.events.list(filter(q), q.limit + 1, after ? { at: after[0]!, id: after[1]! } : undefined);
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    return { items: page.map(item), next: rows.length > q.limit && last ? cursorCodec.encode([last.at, last.id]) : null };
  }

  @Get('events.csv')
  @Header('content-type', 'text/csv; charset=utf-8')
  @ApiOperation({ summary: 'The same events as CSV (up to 100,000 rows)' })
  async csv(@Query() raw: unknown): Promise<string> {
    const q = validate(query.omit({ limit: true, cursor: true }), raw, 'query');
    const rows = await this.hub.events.list(filter(q), 100_000);
    const cell = (v: string | number | null): string => {
      // A text cell starting with = + - @ is a formula to spreadsheets: quote it as text.
      const s = v === null ? '' : typeof v === 'string' && /^[=+\-@\t\r]/.test(v) ? `'${v}` : String(v);
      return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    };
    return ['id,deviceId,type,subject,subjectId,similarity,at', ...rows.map((e) => [e.id, e.deviceId, e.type, e.subject, e.subjectId, e.similarity, e.at].map(cell).join(','))].join('\n') + '\n';
  }
}

function filter(q: { subject?: string | undefined; device?: string | undefined; type?: string | undefined; from?: string | undefined; to?: string | undefined }): EventFilter {
  const f: EventFilter = {};
  if (q.subject) f.subject = q.subject;
  if (q.device) f.device = q.device;
  if (q.type) f.type = q.type;
  if (q.from) f.from = new Date(q.from).toISOString();
  if (q.to) f.to = new Date(q.to).toISOString();
  return f;
}
