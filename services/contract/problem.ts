/**
 * RFC 9457 problem details as the HTTP contract declares them, and the error responses each route
 * lists beside its success responses. services/problem.ts builds the bodies; this schema is what the
 * serializer checks them against and what the OpenAPI document shows.
 */
import { z } from 'zod';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export const ProblemSchema = z
  .object({
    type: z.string().describe('A URN `urn:unet-seg:problem:<kind>`, or about:blank for plain HTTP errors.'),
    title: z.string(),
    status: z.number().int().min(400).max(599),
    detail: z.string(),
    instance: z.string().describe('The request path.'),
    code: z.string().optional().describe('Machine-readable cause: a DICOM error code, an engine error code, VALIDATION, BAD_RLE, ...'),
    error: z.string().optional().describe('On /v2 routes only: the detail again, as Open Inference Protocol clients expect.'),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details.' });
export type ProblemBody = z.infer<typeof ProblemSchema>;

/** Response headers are documented as JSON schemas with a description (what @fastify/swagger expects). */
const RETRY_AFTER = { type: 'integer', minimum: 1, description: 'Seconds to wait before retrying.' } as const;

type Example = { type: string; title: string; status: number; detail: string; instance: string; code?: string };
const example = (kind: string, title: string, status: number, detail: string, instance: string, code?: string): Example => ({
  type: kind === 'about:blank' ? kind : `urn:unet-seg:problem:${kind}`,
  title,
  status,
  detail,
  instance,
  ...(code ? { code } : {}),
});

/** A JSON success response with its description (the OpenAPI response's, not the schema's). */
export const json = <S extends z.ZodType>(description: string, schema: S) => ({ description, content: { 'application/json': { schema } } });

/** One problem+json response: a description, optional headers and named examples (kept in the OpenAPI document). */
function problem(description: string, opts: { headers?: Record<string, unknown>; examples?: Record<string, Example> } = {}) {
  return {
    description,
    ...(opts.headers ? { headers: opts.headers } : {}),
    content: {
      [PROBLEM_CONTENT_TYPE]: {
        schema: ProblemSchema,
        ...(opts.examples ? { examples: Object.fromEntries(Object.entries(opts.examples).map(([k, value]) => [k, { value }])) } : {}),
      },
    },
  };
}

/** The error responses, by what causes them. A route picks the ones it can send. */
export const Problems = {
  badRequest: problem('Bad query parameter, malformed ground truth RLE, or malformed multipart body.', {
    examples: {
      'bad-query': example('bad-request', 'Bad request', 400, 'querystring/threshold: Too big: expected number to be <1', '/segment', 'VALIDATION'),
      'bad-rle': example('bad-rle', 'Invalid run-length encoding', 400, 'ground truth (kaggle, 64x64): kaggle RLE: run 3 ends at pixel 5000 beyond 4096', '/segment', 'BAD_RLE'),
    },
  }),
  badParameter: problem('Bad query or path parameter.'),
  unauthorized: problem('API_TOKEN is set and the bearer token is missing or wrong.', {
    headers: { 'WWW-Authenticate': { type: 'string', description: 'The bearer challenge, e.g. Bearer realm="unet-seg".' } },
    examples: {
      missing: example('unauthorized', 'Unauthorized', 401, 'this endpoint requires an Authorization: Bearer <token> header', '/models', 'TOKEN_MISSING'),
    },
  }),
  modelNotFound: problem('No such model or version.', {
    examples: { 'model-not-found': example('model-not-found', 'Model not found', 404, 'model liver not found', '/segment', 'MODEL_NOT_FOUND') },
  }),
  resultNotFound: problem('Unknown id, or the result expired (RESULT_TTL_SECONDS); for overlay.png also when the segmentation was made without `preview=true`.', {
    examples: {
      'result-not-found': example(
        'result-not-found',
        'Segmentation result not found',
        404,
        'no segmentation "0b6a4f8e-2f0c-4a55-9d5c-5f3e0b7c1a22": unknown, or expired after 3600 s',
        '/segmentations/0b6a4f8e-2f0c-4a55-9d5c-5f3e0b7c1a22',
      ),
    },
  }),
  payloadTooLarge: problem('The body exceeds BODY_LIMIT_BYTES, or the decoded image exceeds MAX_IMAGE_PIXELS (code TOO_LARGE).', {
    examples: { body: example('payload-too-large', 'Payload too large', 413, 'Request body is too large', '/segment', 'BODY_TOO_LARGE') },
  }),
  unsupportedMediaType: problem(
    'Wrong Content-Type, a body that is not DICOM (code NOT_DICOM), or an unsupported transfer syntax (code UNSUPPORTED_TRANSFER_SYNTAX; the detail names the UID and its name).',
    {
      examples: {
        'not-dicom': example('not-dicom', 'Not a DICOM file', 415, 'not a DICOM Part 10 file: no DICM prefix at byte 128', '/segment', 'NOT_DICOM'),
        'transfer-syntax': example(
          'unsupported-transfer-syntax',
          'Unsupported transfer syntax',
          415,
          'transfer syntax 1.2.840.10008.1.2.4.100 (MPEG2 Main Profile / Main Level) is not supported',
          '/segment',
          'UNSUPPORTED_TRANSFER_SYNTAX',
        ),
      },
    },
  ),
  unprocessableDicom: problem(
    'A DICOM without usable pixel data (codes NO_PIXEL_DATA, TRUNCATED, DIMENSION_MISMATCH, UNSUPPORTED_PIXEL_FORMAT, FRAME_OUT_OF_RANGE, CODEC_FAILED), or an image that decodes but cannot be preprocessed for the model (INVALID_IMAGE).',
    { examples: { 'no-pixel-data': example('unprocessable-dicom', 'DICOM has no usable pixel data', 422, 'the dataset has no Pixel Data (7FE0,0010)', '/segment', 'NO_PIXEL_DATA') } },
  ),
  tooManyRequests: problem('RATE_LIMIT_RPM exceeded for this client.', { headers: { 'Retry-After': RETRY_AFTER } }),
  internalError: problem('A server fault (e.g. an inference worker crashed); logged with the request id.'),
  unavailable: problem('The inference queue is full (overloaded), the models are still loading (not-ready), or the result store is unreachable.', {
    headers: { 'Retry-After': RETRY_AFTER },
    examples: { overloaded: example('overloaded', 'Service overloaded', 503, 'inference queue is full (64 waiting)', '/segment', 'OVERLOADED') },
  }),
} as const;

/**
 * What any route behind the token and the rate limit can answer: 401 (API_TOKEN set), 429
 * (RATE_LIMIT_RPM set) and 500. Public routes (probes, /metrics) list only 500.
 */
export const guarded = { 401: Problems.unauthorized, 429: Problems.tooManyRequests, 500: Problems.internalError } as const;
export const open = { 500: Problems.internalError } as const;
