/** How every service variable block parses an environment integer (services/config.ts and the blocks it composes). */
import { z } from 'zod';

/** Integer from an env string (surrounding spaces allowed, nothing else); bounds, when given, are the variable's own. */
export const envInt = (min = Number.MIN_SAFE_INTEGER, max: number = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be >= ${min}`).max(max, `must be <= ${max}`));
