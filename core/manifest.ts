import { z } from 'zod';
import { PreprocessSpecSchema } from './preprocess/spec.ts';
import { ActivationSchema, PostprocessingSchema } from './segmentation/postprocessing.ts';
import { SegmentCodesSchema } from './seg/codes.ts';

/**
 * model.json: what the trainer writes beside model.onnx and what the service requires to serve it.
 * Any UNet-style ONNX (ours or a PyTorch export) is servable with a manifest that validates here.
 */
const dim = z.union([z.number().int().positive(), z.string().min(1)]); // string = symbolic (dynamic) dimension

export const ModelManifestSchema = z
  .object({
    schemaVersion: z.literal(1),
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'name: letters, digits, . _ -'),
    version: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z._-]*$/),
    description: z.string().default(''),
    /** Demo/research/clinical disclaimer shown in GET /models. */
    intendedUse: z.string().default(''),
    input: z.object({
      name: z.string().min(1),
      layout: z.literal('NCHW'),
      dtype: z.literal('float32'),
      shape: z.tuple([dim, z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]),
    }),
    output: z.object({
      name: z.string().min(1),
      activation: ActivationSchema,
      shape: z.tuple([dim, z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]),
    }),
    preprocessing: PreprocessSpecSchema,
    postprocessing: PostprocessingSchema,
    /** One label per output channel. */
    labels: z.array(z.string().min(1)).min(1),
    /** Softmax models: the label of the background channel (required for them, meaningless otherwise). */
    background: z.string().min(1).optional(),
    /**
     * DICOM SEG codes per label (core/seg/codes.ts): the segmented property category and type, e.g.
     * { "tumour": { "category": { "CodeValue": "49755003", "CodingSchemeDesignator": "SCT", "CodeMeaning":
     * "Morphologically Altered Structure" }, "type": { ... } } }. Labels left out get codes.ts's defaults.
     */
    segments: z.record(z.string(), SegmentCodesSchema).optional(),
    training: z
      .object({
        dataset: z.object({ layout: z.string(), images: z.number().int(), positives: z.number().int(), source: z.string() }),
        architecture: z.record(z.string(), z.unknown()),
        epochs: z.number().int(),
        batchSize: z.number().int(),
        fold: z.number().int(),
        folds: z.number().int(),
        seed: z.number().int(),
        lossWeights: z.record(z.string(), z.number()),
        validationDice: z.number().min(0).max(1),
        bestEpoch: z.number().int(),
        device: z.string(),
        durationSeconds: z.number(),
      })
      .partial()
      .optional(),
    onnx: z.object({ file: z.string().default('model.onnx'), sha256: z.string().regex(/^[0-9a-f]{64}$/), opset: z.number().int().optional() }),
    createdAt: z.string().optional(),
  })
  .superRefine((m, ctx) => {
    if (m.output.shape[1] !== m.labels.length) {
      ctx.addIssue({ code: 'custom', message: `output has ${m.output.shape[1]} channels but ${m.labels.length} labels` });
    }
    if (m.input.shape[1] !== m.preprocessing.channels) {
      ctx.addIssue({ code: 'custom', message: `input has ${m.input.shape[1]} channels but preprocessing makes ${m.preprocessing.channels}` });
    }
    if (new Set(m.labels).size !== m.labels.length) ctx.addIssue({ code: 'custom', path: ['labels'], message: 'labels must be unique' });
    if (m.output.activation === 'softmax') {
      if (m.background === undefined || !m.labels.includes(m.background)) {
        ctx.addIssue({ code: 'custom', path: ['background'], message: `softmax models name their background channel: one of the labels (${m.labels.join(', ')})` });
      }
      if (m.labels.length < 2) ctx.addIssue({ code: 'custom', path: ['labels'], message: 'softmax needs at least two channels (background and a class)' });
    } else if (m.background !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['background'], message: `background is only for softmax models (activation is ${m.output.activation})` });
    }
    for (const label of Object.keys(m.postprocessing.classes ?? {})) {
      if (!m.labels.includes(label)) ctx.addIssue({ code: 'custom', path: ['postprocessing', 'classes', label], message: `rules for "${label}", which is not one of the labels (${m.labels.join(', ')})` });
    }
    for (const label of Object.keys(m.segments ?? {})) {
      if (!m.labels.includes(label)) ctx.addIssue({ code: 'custom', path: ['segments', label], message: `SEG codes for "${label}", which is not one of the labels (${m.labels.join(', ')})` });
      else if (label === m.background) ctx.addIssue({ code: 'custom', path: ['segments', label], message: `"${label}" is the background channel, which a SEG leaves out` });
    }
    if (m.input.shape[2] !== m.preprocessing.size.height || m.input.shape[3] !== m.preprocessing.size.width) {
      ctx.addIssue({ code: 'custom', message: 'input H x W must equal preprocessing.size' });
    }
  });
export type ModelManifest = z.infer<typeof ModelManifestSchema>;

/** Parse with a one-line message naming the first bad field. */
export function parseManifest(json: unknown, source = 'model.json'): ModelManifest {
  const r = ModelManifestSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new Error(`${source}: invalid manifest at ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return r.data;
}
