/**
 * The post-processing options a model is served with, declared once: the manifest's `postprocessing`
 * block, the request's query parameters, the trainer's options and the segment CLI's flags all use
 * these schemas (and so these bounds and defaults).
 */
import { z } from 'zod';

/** Foreground where probability > threshold; 0 and 1 would make every mask empty or full. */
export const ThresholdSchema = z.number().gt(0).lt(1).describe('Probability threshold: foreground where p > threshold (0 < t < 1).');
export const DEFAULT_THRESHOLD = 0.5;

/** Connected-area gate in original-resolution pixels: a mask smaller than this is reported empty. */
export const MinAreaSchema = z.number().int().min(0).describe('Masks with fewer foreground pixels (original resolution) are reported empty.');
export const DEFAULT_MIN_AREA = 0;

export const PostprocessingSchema = z.object({
  threshold: ThresholdSchema.default(DEFAULT_THRESHOLD),
  minArea: MinAreaSchema.default(DEFAULT_MIN_AREA),
});
export type Postprocessing = z.infer<typeof PostprocessingSchema>;

/** What the network emits: raw logits (the processor applies the sigmoid) or probabilities. */
export const ActivationSchema = z.enum(['logits', 'sigmoid']);
export type Activation = z.infer<typeof ActivationSchema>;
