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

/**
 * The SIIM-ACR winners' "triplet" is (topThreshold, minArea, threshold): the image has a finding only
 * when at least minArea pixels lie above topThreshold, and then threshold (the lower one) draws it.
 */
export const TopThresholdSchema = ThresholdSchema.describe(
  'Triplet gate: the mask is kept only when at least minArea pixels have p > topThreshold (then `threshold` draws it).',
);
export const MinComponentAreaSchema = z.number().int().min(0).describe('Connected components (8-connected) smaller than this many pixels are removed.');
export const KeepLargestSchema = z.boolean().describe('Keep only the largest connected component (e.g. brain extraction).');

/** Every rule that turns one channel's probabilities into its mask. */
export const MaskRulesSchema = z.object({
  threshold: ThresholdSchema,
  minArea: MinAreaSchema,
  topThreshold: TopThresholdSchema.optional(),
  minComponentArea: MinComponentAreaSchema.optional(),
  keepLargest: KeepLargestSchema.optional(),
});
export type MaskRules = z.infer<typeof MaskRulesSchema>;

export const PostprocessingSchema = z.object({
  threshold: ThresholdSchema.default(DEFAULT_THRESHOLD),
  minArea: MinAreaSchema.default(DEFAULT_MIN_AREA),
  topThreshold: TopThresholdSchema.optional(),
  minComponentArea: MinComponentAreaSchema.optional(),
  keepLargest: KeepLargestSchema.optional(),
  /** Per-label overrides of the rules above, keyed by label. */
  classes: z.record(z.string(), MaskRulesSchema.partial()).optional(),
});
export type Postprocessing = z.infer<typeof PostprocessingSchema>;

/** The rules for one label: the model-wide ones, then the label's own overrides. */
export function rulesFor(p: Omit<Postprocessing, 'classes'> & { classes?: Postprocessing['classes'] }, label: string): MaskRules {
  const { classes, ...base } = p;
  return { ...base, ...(classes?.[label] ?? {}) };
}

/**
 * What the network emits and so what the processor applies: `logits` (per-channel sigmoid applied
 * here; channels are independent labels), `sigmoid` (already probabilities), or `softmax` (logits
 * over mutually exclusive classes, one of them background: softmax applied here, each pixel goes to
 * its most probable class).
 */
export const ActivationSchema = z.enum(['logits', 'sigmoid', 'softmax']);
export type Activation = z.infer<typeof ActivationSchema>;
