import { PreprocessError } from './errors.ts';
import { PreprocessSpecSchema, type PreprocessSpec } from './spec.ts';

/**
 * Validate (and fill defaults of) a spec; throws PreprocessError INVALID_SPEC naming the field.
 * Called on every toTensor (microseconds) so a spec mutated after loading cannot slip through.
 */
export function parsePreprocessSpec(input: unknown): PreprocessSpec {
  const r = PreprocessSpecSchema.safeParse(input);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new PreprocessError('INVALID_SPEC', `invalid preprocessing spec at ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return r.data;
}
