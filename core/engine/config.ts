/**
 * The engine's configuration, declared once. The HTTP service's env loader (services/config.ts) and the
 * batch CLI (services/segment-cli.ts) both parse into this schema; Engine.start parses what it is given
 * again, so a config built any other way (tests, benches) gets the same defaults and bounds.
 */
import { z } from 'zod';
import { DEFAULT_MAX_PIXELS } from '../dicom/decode.ts';

/**
 * Largest image (rows x columns x frames x samples) decoded by default: 64 Mi pixels. core/dicom owns
 * the number (decodeDicom's own default); this is the name every other layer uses for it.
 */
export const MAX_PIXELS_DEFAULT: number = DEFAULT_MAX_PIXELS;

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const EngineConfigSchema = z.object({
  modelRepository: z.string().min(1).default('models').describe('Directory of <name>/<version>/{model.onnx,model.json}.'),
  provider: z.enum(['cpu', 'cuda']).default('cpu').describe('ONNX Runtime execution provider; cuda falls back to cpu (with the reason logged) when unavailable.'),
  deviceId: int(0, 64).default(0).describe('CUDA device ordinal (provider cuda only).'),
  workers: int(0, 64)
    .default(0)
    .describe(
      'Inference worker threads; each holds its own ORT session per model. 0 = automatic (core/runtime/session.ts planThreads): on cpu one per core up to 8, on cuda 2 (1 under 4 cores).',
    ),
  intraOpThreads: int(0, 256)
    .default(0)
    .describe('ORT intra-op threads per worker session; 0 = automatic (the cores shared evenly on cpu, 1 on cuda). Clamped so workers x threads <= cores.'),
  prepareWorkers: int(0, 64)
    .optional()
    .describe(
      'Worker threads that only decode and preprocess (no sessions); 0 = the inference workers do it between batches. Default: 0 on cpu, the cores the inference workers leave on cuda.',
    ),
  intraOpSpinning: z.boolean().default(false).describe("ORT intra-op threads busy-wait between parallel sections (ORT's default); false: they sleep."),
  maxBatch: int(0, 256)
    .default(0)
    .describe(
      'Most images per session.run (a model with a fixed batch dimension uses that instead); 0 = automatic: 4 on cpu (a batch holds every request behind it, and past 4 a single-threaded session gains nothing per image), 8 on cuda.',
    ),
  maxDelayMs: z.number().min(0).max(10_000).default(5).describe('Longest an image waits for its batch to fill, in milliseconds.'),
  maxQueue: int(1, 1_000_000).default(64).describe('Images admitted but not yet running (decoding or waiting for a batch); beyond it OverloadedError.'),
  maxPixels: z
    .number()
    .int()
    .min(1)
    .default(MAX_PIXELS_DEFAULT)
    .describe('Largest image (rows x columns x frames x samples) decoded; larger -> DicomError TOO_LARGE.'),
  taskTimeoutMs: int(100, 3_600_000)
    .default(30_000)
    .describe(
      'Longest one worker task may run (decode + preprocess of one image, or inference + postprocess of one batch), in ms; past it the request fails with DEADLINE_EXCEEDED and the worker is terminated and replaced.',
    ),
  requestTimeoutMs: int(100, 3_600_000)
    .default(120_000)
    .describe('Longest a request may take from admission to result (queueing, loading an older version, both tasks), in ms; past it DEADLINE_EXCEEDED.'),
  models: z
    .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a model name'))
    .min(1)
    .optional()
    .describe('Load and serve only these models (names); default: every model in the repository.'),
  defaultModel: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a model name')
    .optional()
    .describe('Model served when a request names none; default: the only model, or the first ready one by name.'),
});

/** A parsed engine config: every default filled in. */
export type EngineConfig = z.infer<typeof EngineConfigSchema>;
/** What callers may pass: defaulted fields optional. */
export type EngineConfigInput = z.input<typeof EngineConfigSchema>;
