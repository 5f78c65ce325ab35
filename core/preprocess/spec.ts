import { z } from 'zod';

/**
 * The declared preprocessing of a model. It is stored verbatim in the model manifest, and both the
 * trainer and the service turn a DecodedImage into a tensor through `toTensor(image, spec)` with it,
 * so there is exactly one preprocessing path.
 *
 * Order of operations (fixed, documented in the README):
 *   1. intensity: modality values -> [0, 1] (clamped) by `intensity`
 *   2. resize to size.height x size.width with `resize`
 *   3. optional dataset normalisation: (x - mean[c]) / std[c]
 *   4. replicate to `channels` channels, NCHW float32
 */
export const IntensitySchema = z.discriminatedUnion('kind', [
  /** Per-image min..max -> 0..1. */
  z.object({ kind: z.literal('minmax') }),
  /** Per-image (x - mean) / std, then mapped to 0..1 by clamping to +-clip std. */
  z.object({ kind: z.literal('zscore'), clip: z.number().positive().default(3) }),
  /** A fixed window (e.g. CT lung), the DICOM linear VOI function. */
  z.object({ kind: z.literal('window'), center: z.number(), width: z.number().positive() }),
  /** The file's own WindowCenter/WindowWidth when present, else the fallback. */
  z.object({ kind: z.literal('dicom-window'), fallback: z.enum(['minmax', 'zscore']).default('minmax') }),
  /** Fixed full range, e.g. 0..255 for 8-bit radiographs: (x - low) / (high - low). */
  z.object({ kind: z.literal('range'), low: z.number(), high: z.number() }),
]);
export type Intensity = z.infer<typeof IntensitySchema>;

export const ResizeMethodSchema = z.enum(['nearest', 'bilinear', 'bicubic', 'lanczos3', 'area']);
export type ResizeMethod = z.infer<typeof ResizeMethodSchema>;

export const PreprocessSpecSchema = z
  .object({
    size: z.object({ height: z.number().int().positive().max(8192), width: z.number().int().positive().max(8192) }),
    resize: ResizeMethodSchema.default('bilinear'),
    intensity: IntensitySchema,
    /** Dataset mean/std per channel (after step 1, so in 0..1 units); absent means identity. */
    normalize: z.object({ mean: z.array(z.number()).min(1), std: z.array(z.number().positive()).min(1) }).optional(),
    channels: z.number().int().min(1).max(4).default(1),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.intensity.kind === 'range' && !(s.intensity.high > s.intensity.low)) {
      ctx.addIssue({ code: 'custom', path: ['intensity', 'high'], message: 'range intensity needs high > low' });
    }
    if (s.normalize) {
      const n = s.normalize.mean.length;
      if (n !== s.normalize.std.length || (n !== 1 && n !== s.channels)) {
        ctx.addIssue({ code: 'custom', message: 'normalize.mean/std must have 1 or `channels` entries, and equal length' });
      }
    }
  });
export type PreprocessSpec = z.infer<typeof PreprocessSpecSchema>;
