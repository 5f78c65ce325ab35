/**
 * Open Inference Protocol (KServe v2) inference, in zod: the request and response JSON objects of
 * POST /v2/models/{name}[/versions/{version}]/infer, the tensor names this server produces, and the
 * request parameters it reads. The wire rules (JSON tensors, the binary tensor data extension) are
 * in services/routes/v2-infer.ts; the design is in the README's "Open Inference Protocol" section.
 */
import { z } from 'zod';
import { writeDicom } from '../../core/dicom/write.ts';

/** $parameters: name -> string, number or boolean. */
export const OipParametersSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));

/** Tensor data: flat or nested arrays, row-major. */
const TensorDataSchema: z.ZodType<unknown[]> = z.array(z.unknown());

export const OipRequestInputSchema = z.object({
  name: z.string().min(1).describe('The input tensor name: the model input name for FP32, any name for BYTES (e.g. `dicom`).'),
  shape: z.array(z.number().int().min(0)).describe('BYTES: [N] (or [N, 1]), one DICOM Part 10 file per element. FP32: [N, C, H, W], C, H, W as the manifest declares. N is at most the server\'s MAX_QUEUE.'),
  datatype: z.string().describe('`BYTES` (DICOM files) or `FP32` (the preprocessed NCHW tensor).'),
  parameters: OipParametersSchema.optional().describe('`binary_data_size`: the tensor is in the binary part of the body (binary tensor data extension).'),
  data: TensorDataSchema.optional().describe(
    'Row-major, flat or nested. BYTES elements are base64 strings (a DICOM is not UTF-8 text); FP32 elements are finite JSON numbers. Absent when `binary_data_size` is given (binary FP32: 4 little-endian bytes per value).',
  ),
});

export const OipRequestOutputSchema = z.object({
  name: z.string().min(1).describe('`mask`, `mask:<label>`, `labels` or `probabilities`.'),
  parameters: OipParametersSchema.optional().describe('`binary_data: true` returns this tensor in the binary part of the body.'),
});

export const OipInferenceRequestSchema = z
  .object({
    id: z.string().optional().describe('Echoed in the response.'),
    parameters: OipParametersSchema.optional().describe(
      'Read: `threshold` (number in (0, 1)), `min_area` (integer >= 0), `tta` (boolean; BYTES input only), `frame` (integer >= 0; BYTES input only), `binary_data_output` (boolean: every output binary unless it says otherwise). Others are ignored (e.g. tritonclient\'s `priority`, `timeout`).',
    ),
    inputs: z.array(OipRequestInputSchema).min(1).max(1).describe('Exactly one input tensor.'),
    outputs: z.array(OipRequestOutputSchema).optional().describe('Default: `mask` and `labels`.'),
  })
  .meta({
    id: 'OipInferenceRequest',
    description: 'Open Inference Protocol $inference_request.',
    // Swagger UI pre-fills the JSON body from this: a real (tiny) DICOM, so Execute answers 200.
    examples: [{ id: 'example-1', inputs: [{ name: 'dicom', shape: [1], datatype: 'BYTES', data: [exampleDicomBase64()] }], outputs: [{ name: 'labels' }, { name: 'mask' }] }],
  });
export type OipInferenceRequest = z.infer<typeof OipInferenceRequestSchema>;

export const OipResponseOutputSchema = z.object({
  name: z.string(),
  shape: z.array(z.number().int().min(0)),
  datatype: z.enum(['UINT8', 'FP32', 'BYTES']),
  parameters: OipParametersSchema.optional().describe('`binary_data_size` when the data is in the binary part of the body.'),
  data: z.array(z.union([z.number(), z.string()])).optional().describe('Flat, row-major; absent when sent as binary (FP32: 4 little-endian bytes per value).'),
});
export type OipResponseOutput = z.infer<typeof OipResponseOutputSchema>;

export const OipInferenceResponseSchema = z
  .object({
    model_name: z.string(),
    model_version: z.string(),
    id: z.string().optional(),
    parameters: OipParametersSchema.optional().describe('`execution_provider` (cpu or cuda) and `total_ms`.'),
    outputs: z.array(OipResponseOutputSchema),
  })
  .meta({ id: 'OipInferenceResponse', description: 'Open Inference Protocol $inference_response.' });
export type OipInferenceResponse = z.infer<typeof OipInferenceResponseSchema>;

/** The output tensors this server can produce. */
export const OIP_OUTPUTS = {
  mask: 'mask',
  labels: 'labels',
  probabilities: 'probabilities',
  /** `mask:<label>`: one label's mask. */
  labelPrefix: 'mask:',
} as const;

/** Extensions GET /v2 advertises. */
export const OIP_EXTENSIONS = ['binary_tensor_data'] as const;

/** The binary tensor data extension's header: the length of the JSON part of the body. */
export const INFERENCE_HEADER = 'inference-header-content-length';

/**
 * A 32x32 8-bit DICOM (a bright disc on a ramp), base64: the request example Swagger UI pre-fills,
 * small enough for the document and a real image any model can segment (preprocessing resizes it).
 * Fixed UIDs so the generated document is byte-stable.
 */
export function exampleDicomBase64(): string {
  const n = 32;
  const px = new Uint8Array(n * n);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) px[y * n + x] = Math.hypot(y - 15, x - 17) < 8 ? 220 : 20 + x * 2;
  const uid = '2.25.1000000000000000000000000000000001';
  return Buffer.from(
    writeDicom({ rows: n, columns: n, bitsAllocated: 8, pixelRepresentation: 0, photometricInterpretation: 'MONOCHROME2', pixels: px, sopInstanceUid: `${uid}.1`, studyInstanceUid: `${uid}.2`, seriesInstanceUid: `${uid}.3`, modality: 'OT' }),
  ).toString('base64');
}
