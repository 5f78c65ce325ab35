/** Query-string forms of core schemas: the same bounds and descriptions, read from strings. */
import { z } from 'zod';

/** The same number schema (checks and description), coerced from its query-string text. */
export function numberFromQuery(schema: z.ZodNumber): z.ZodNumber {
  const coerced = new z.ZodNumber({ ...schema._zod.def, coerce: true });
  const meta = z.globalRegistry.get(schema);
  return meta ? coerced.meta(meta) : coerced;
}

/** `true` / `false` in a query string (documented as a boolean). */
export const booleanFromQuery = () => z.stringbool({ truthy: ['true'], falsy: ['false'] }).meta({ type: 'boolean' } as Record<string, unknown>);
