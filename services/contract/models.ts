/** GET /models, /admin/reload and the Open Inference Protocol (KServe v2) metadata, in zod. */
import { z } from 'zod';
import { ExecutionProviderSchema } from '../../core/segmentation/records.ts';
import { ActivationSchema } from '../../core/segmentation/postprocessing.ts';
import { PreprocessSpecSchema } from '../../core/preprocess/spec.ts';

const name = z.string().min(1).max(128);
export const ModelParamsSchema = z.object({ name: name.describe('Model name.') });
export const ModelVersionParamsSchema = z.object({ name: name.describe('Model name.'), version: name.describe('Model version.') });
export const ModelQuerySchema = z.strictObject({ version: name.optional().describe('A specific loaded version; default the active one.') });

const shape = z.array(z.number().int()).describe('NCHW; -1 marks a dynamic dimension (the batch).');

export const ModelSummarySchema = z
  .object({
    name: z.string(),
    version: z.string().describe('The active version.'),
    versions: z.array(z.string()).describe('Every version in the repository, oldest first.'),
    default: z.boolean().describe('Used when POST /segment names no model.'),
    ready: z.boolean(),
    executionProvider: ExecutionProviderSchema.nullable().describe('The provider actually running the model (cpu after a CUDA fallback); null when not loaded.'),
    requestedExecutionProvider: ExecutionProviderSchema,
    loadedAt: z.string(),
    error: z.string().optional().describe('Why the model (or its newest version) failed to load.'),
    status: z
      .enum(['ready', 'unavailable', 'not-loaded', 'invalid'])
      .describe('ready; unavailable (loaded, no live worker); not-loaded (an older version, loads on first request); invalid (cannot be served: see error).'),
    sha256: z.string().nullable().describe('sha256 of the weights the workers hold; null when not loaded.'),
    manifest: z.null().optional().describe('Present (null) only when the manifest itself does not validate; the manifest fields below are then absent.'),
    description: z.string().optional(),
    intendedUse: z.string().optional(),
    labels: z.array(z.string()).optional(),
    input: z.object({ name: z.string(), layout: z.string(), dtype: z.string(), shape }).optional(),
    output: z.object({ name: z.string(), activation: ActivationSchema, shape }).optional(),
    preprocessing: PreprocessSpecSchema.optional().describe("The manifest's preprocessing (size, resize, intensity, normalize, channels)."),
    postprocessing: z.object({ threshold: z.number(), minArea: z.number().int() }).optional(),
    validationDice: z.number().optional(),
    createdAt: z.string().optional(),
  })
  .meta({
    id: 'ModelSummary',
    examples: [
      {
        name: 'lung',
        version: '1',
        versions: ['1'],
        default: true,
        ready: true,
        executionProvider: 'cpu',
        requestedExecutionProvider: 'cuda',
        loadedAt: '2025-01-01T12:00:00.000Z',
        status: 'ready',
        sha256: '3f0a9c1e5b7d2468ace13579bdf02468ace13579bdf02468ace13579bdf02468',
        description: 'UNet (depth 4, base 16) trained on synthetic chest phantoms.',
        intendedUse: 'Research/demo only; not for clinical use.',
        labels: ['lung'],
        input: { name: 'image', layout: 'NCHW', dtype: 'float32', shape: [-1, 1, 256, 256] },
        output: { name: 'logits', activation: 'logits', shape: [-1, 1, 256, 256] },
        preprocessing: { size: { height: 256, width: 256 }, resize: 'bilinear', intensity: { kind: 'minmax' }, channels: 1 },
        postprocessing: { threshold: 0.5, minArea: 0 },
      },
    ],
  });
export type ModelSummary = z.infer<typeof ModelSummarySchema>;

export const ModelListSchema = z.object({ defaultModel: z.string().nullable(), models: z.array(ModelSummarySchema) });

export const ReloadResultSchema = z.object({
  loaded: z.array(z.string()).describe('`name:version` keys now loaded.'),
  failed: z.array(z.object({ model: z.string(), error: z.string() })),
  models: z.array(ModelSummarySchema),
});

export const OipServerMetadataSchema = z.object({ name: z.string(), version: z.string(), extensions: z.array(z.string()) });

const OipTensorSchema = z.object({ name: z.string(), datatype: z.enum(['FP32', 'UINT8', 'BYTES']), shape: z.array(z.number().int()) });
export const OipModelMetadataSchema = z.object({
  name: z.string(),
  versions: z.array(z.string()),
  platform: z.literal('onnxruntime_onnx'),
  inputs: z.array(OipTensorSchema),
  outputs: z.array(OipTensorSchema),
});
export const OipModelReadySchema = z.object({ name: z.string(), ready: z.boolean() });
