import { BadRequestException } from '@nestjs/common';
import { z } from 'zod';

/** Validate a body or query with zod; a 400 says which field is wrong and why. */
export function validate<T>(schema: z.ZodType<T>, value: unknown, what = 'body'): T {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const msg = r.error.issues.map((i) => `${what}${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`).join('; ');
  throw new BadRequestException(msg);
}

/** JSON schema for OpenAPI from the same zod schema. */
export const jsonSchema = (schema: z.ZodType): Record<string, unknown> => z.toJSONSchema(schema, { io: 'input' });

export const isoDate = z.string().datetime({ offset: true });

export const cursorCodec = {
  encode: (parts: string[]): string => Buffer.from(JSON.stringify(parts)).toString('base64url'),
  decode: (cursor: string): string[] => {
    try {
      const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
    } catch {
      /* fallthrough */
    }
    throw new BadRequestException('query.cursor: not a cursor this API returned');
  },
};
