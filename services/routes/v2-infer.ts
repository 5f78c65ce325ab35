/**
 * Open Inference Protocol (KServe v2) inference: POST /v2/models/{name}[/versions/{version}]/infer.
 *
 * Inputs: one tensor, either BYTES holding DICOM Part 10 files (shape [N]; the full POST /segment
 * path: decode, preprocess, model, post-processing) or FP32 NCHW as the manifest declares (the
 * preprocessed tensor; answered 501 until the engine has a raw-tensor entry point, see the README).
 * Outputs, per the request's `outputs` (default `mask` and `labels`): `mask` UINT8 [N, C, rows, cols]
 * (one channel per label, 0/1, at the image's own resolution), `mask:<label>` UINT8 [N, 1, rows,
 * cols], `labels` BYTES [C]. Both JSON tensors and the binary tensor data extension
 * (Inference-Header-Content-Length, `binary_data_size`, `binary_data`, `binary_data_output`) are
 * read and written. Errors are problem+json bodies that also carry the protocol's `error` member.
 */
import { performance } from 'node:perf_hooks';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ModelInfo, SegmentResult } from '../../core/engine/index.ts';
import { ModelParamsSchema, ModelVersionParamsSchema } from '../contract/models.ts';
import {
  INFERENCE_HEADER,
  OIP_OUTPUTS,
  OipInferenceRequestSchema,
  OipInferenceResponseSchema,
  type OipInferenceRequest,
  type OipResponseOutput,
} from '../contract/oip.ts';
import { TAGS } from '../contract/openapi.ts';
import { guarded, Problems } from '../contract/problem.ts';
import { Problem } from '../problem.ts';

type Params = NonNullable<OipInferenceRequest['parameters']>;

const bad = (detail: string, code = 'OIP_BAD_REQUEST') => new Problem('bad-request', detail, { code });

/** The request body: the JSON part and, with the binary extension, what follows it. */
export function splitBody(body: Buffer, headerLength: string | string[] | undefined): { json: Buffer; binary: Buffer } {
  if (headerLength === undefined) return { json: body, binary: body.subarray(body.length) };
  const text = Array.isArray(headerLength) ? headerLength[0]! : headerLength;
  if (!/^\d+$/.test(text.trim())) throw bad(`Inference-Header-Content-Length must be a non-negative integer, got ${JSON.stringify(text)}`);
  const n = Number(text.trim());
  if (n > body.length) throw bad(`Inference-Header-Content-Length ${n} exceeds the body's ${body.length} bytes`);
  if (n === 0) throw bad('Inference-Header-Content-Length 0 (a raw binary request without a JSON header) is not supported; send the JSON inference request first');
  return { json: body.subarray(0, n), binary: body.subarray(n) };
}

/** The request object, validated; zod's first issue names the field. */
export function parseRequest(json: Buffer): OipInferenceRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(json.toString('utf8'));
  } catch (e) {
    throw bad(`the inference request is not valid JSON: ${(e as Error).message}`);
  }
  const r = OipInferenceRequestSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw bad(`inference request ${issue.path.length ? issue.path.join('.') : '(body)'}: ${issue.message}`);
  }
  return r.data;
}

function flatten(data: unknown[], out: unknown[] = []): unknown[] {
  for (const v of data) if (Array.isArray(v)) flatten(v, out);
  else out.push(v);
  return out;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** BYTES elements in the binary form: a 4-byte little-endian length, then the bytes, repeated. */
export function readBytesElements(buf: Buffer, count: number, name: string): Buffer[] {
  const out: Buffer[] = [];
  let o = 0;
  while (o < buf.length) {
    if (o + 4 > buf.length) throw bad(`input ${name}: truncated BYTES element length at byte ${o}`);
    const len = buf.readUInt32LE(o);
    if (o + 4 + len > buf.length) throw bad(`input ${name}: BYTES element ${out.length} claims ${len} bytes, ${buf.length - o - 4} left`);
    out.push(buf.subarray(o + 4, o + 4 + len));
    o += 4 + len;
  }
  if (out.length !== count) throw bad(`input ${name}: shape holds ${count} elements, the binary data ${out.length}`);
  return out;
}

/** BYTES elements in binary form, for the response. */
export function writeBytesElements(items: string[]): Buffer {
  return Buffer.concat(
    items.flatMap((s) => {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      return [len, b];
    }),
  );
}

/** The DICOM files of a BYTES input (JSON base64 strings or binary elements). */
function dicomFiles(input: OipInferenceRequest['inputs'][number], binary: () => Buffer | undefined): Buffer[] {
  const count = input.shape.reduce((a, b) => a * b, 1);
  if (input.shape.length < 1 || input.shape.length > 2 || (input.shape.length === 2 && input.shape[1] !== 1)) {
    throw bad(`input ${input.name}: BYTES shape must be [N] or [N, 1] (one DICOM file per element), got [${input.shape.join(', ')}]`);
  }
  if (count < 1) throw bad(`input ${input.name}: no DICOM file (shape [${input.shape.join(', ')}])`);
  const bin = binary();
  if (bin) return readBytesElements(bin, count, input.name);
  if (!input.data) throw bad(`input ${input.name}: no data (give "data" or the binary_data_size parameter)`);
  const items = flatten(input.data);
  if (items.length !== count) throw bad(`input ${input.name}: shape holds ${count} elements, data ${items.length}`);
  return items.map((v, k) => {
    if (typeof v !== 'string') throw bad(`input ${input.name}: BYTES element ${k} must be a base64 string of a DICOM file`);
    const s = v.replace(/\s+/g, '');
    if (!BASE64.test(s)) throw bad(`input ${input.name}: BYTES element ${k} is not base64 (in the JSON form a DICOM is sent base64-encoded; or use the binary tensor data extension)`);
    return Buffer.from(s, 'base64');
  });
}

interface Options {
  threshold?: number;
  minArea?: number;
  tta?: boolean;
  frame?: number;
  binaryOutput: boolean;
}

/** The request parameters this server reads (others are ignored, as the protocol allows). */
function options(p: Params | undefined): Options {
  const o: Options = { binaryOutput: false };
  if (!p) return o;
  const num = (k: string, check: (n: number) => boolean, what: string) => {
    const v = p[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !check(v)) throw bad(`parameter ${k} must be ${what}, got ${JSON.stringify(v)}`, 'VALIDATION');
    return v;
  };
  const bool = (k: string) => {
    const v = p[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw bad(`parameter ${k} must be a boolean, got ${JSON.stringify(v)}`, 'VALIDATION');
    return v;
  };
  o.threshold = num('threshold', (n) => n > 0 && n < 1, 'a number in (0, 1)');
  o.minArea = num('min_area', (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0');
  o.frame = num('frame', (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0');
  o.tta = bool('tta');
  o.binaryOutput = bool('binary_data_output') ?? false;
  return o;
}

/** One output tensor: its JSON descriptor and, when binary, its bytes. */
interface Tensor {
  out: OipResponseOutput;
  bytes?: Buffer;
}

function tensor(name: string, datatype: 'UINT8' | 'BYTES', shape: number[], values: Uint8Array | string[], binary: boolean): Tensor {
  if (binary) {
    const bytes = datatype === 'BYTES' ? writeBytesElements(values as string[]) : Buffer.from((values as Uint8Array).buffer, (values as Uint8Array).byteOffset, (values as Uint8Array).byteLength);
    return { out: { name, datatype, shape, parameters: { binary_data_size: bytes.length } }, bytes };
  }
  return { out: { name, datatype, shape, data: datatype === 'BYTES' ? (values as string[]) : Array.from(values as Uint8Array) } };
}

/** Label masks of every result, stacked N x C x rows x cols. */
function stackMasks(results: SegmentResult[], labels: string[]): { shape: number[]; data: Uint8Array } {
  const { rows, columns } = results[0]!.image;
  for (const r of results) {
    if (r.image.rows !== rows || r.image.columns !== columns) {
      throw bad(`the images differ in size (${rows}x${columns} and ${r.image.rows}x${r.image.columns}); a mask tensor needs one size: send them in separate requests`);
    }
  }
  const plane = rows * columns;
  const data = new Uint8Array(results.length * labels.length * plane);
  results.forEach((r, n) => labels.forEach((label, c) => data.set(r.masks.find((m) => m.label === label)!.mask.data, (n * labels.length + c) * plane)));
  return { shape: [results.length, labels.length, rows, columns], data };
}

const inferSchema = (params: z.ZodType, operationId: string, summary: string) => ({
  tags: [TAGS.oip],
  operationId,
  summary,
  description: `Open Inference Protocol (KServe v2) inference, JSON tensors or the binary tensor data extension.

**Input** (exactly one): \`BYTES\` with shape [N], each element one DICOM Part 10 file (base64 in
JSON \`data\`; raw in the binary form), segmented exactly as POST /segment does; or \`FP32\` [N, C, H, W]
named and shaped as the manifest's input (see GET /v2/models/{name}), which this server answers 501
for now (the engine has no raw-tensor entry point yet).

**Outputs** (request \`outputs\`, default \`mask\` and \`labels\`): \`mask\` UINT8 [N, C, rows, cols], one
0/1 channel per label in the model's label order at the image's own resolution; \`mask:<label>\`
UINT8 [N, 1, rows, cols]; \`labels\` BYTES [C]. \`probabilities\` is answered 501 for now.

**Parameters** (request \`parameters\`): \`threshold\`, \`min_area\`, \`tta\`, \`frame\` as POST /segment's
query; \`binary_data_output\`. Unknown parameters are ignored.

**Binary tensor data**: an input with parameter \`binary_data_size\` is read from the body after the JSON
object, whose length the \`Inference-Header-Content-Length\` header gives (any Content-Type, e.g.
application/octet-stream); BYTES elements are a 4-byte little-endian length and the bytes. An output
with parameter \`binary_data: true\` (or all, with \`binary_data_output: true\`) comes back the same way:
Content-Type application/octet-stream, \`Inference-Header-Content-Length\`, each tensor's
\`binary_data_size\`.

**Errors** are problem+json with the protocol's \`error\` member (the detail again).`,
  params,
  documentedBody: {
    description: 'The inference request JSON, optionally followed by binary tensor data.',
    content: {
      'application/json': { schema: OipInferenceRequestSchema },
      'application/octet-stream': { schema: z.string().meta({ contentMediaType: 'application/octet-stream', description: 'JSON inference request followed by binary tensor data; Inference-Header-Content-Length gives the JSON length.' }) },
    },
  },
  response: {
    200: {
      description: 'The inference response; with binary outputs, the JSON part followed by the tensor bytes.',
      headers: { 'Inference-Header-Content-Length': { type: 'integer', description: 'Length of the JSON part (binary responses only).' } },
      content: {
        'application/json': { schema: OipInferenceResponseSchema },
        'application/octet-stream': { schema: z.string().meta({ contentMediaType: 'application/octet-stream' }) },
      },
    },
    400: Problems.badRequest,
    404: Problems.modelNotFound,
    413: Problems.payloadTooLarge,
    415: Problems.unsupportedMediaType,
    422: Problems.unprocessableDicom,
    ...guarded,
    501: Problems.notImplemented,
    503: Problems.unavailable,
  },
});

const v2InferRoutes: FastifyPluginAsyncZod = async (app) => {
  const limit = app.config.bodyLimitBytes;
  // Any Content-Type (tritonclient sends none with a binary body, others application/json or
  // application/octet-stream): the body is read whole and split by Inference-Header-Content-Length.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limit }, (_req, body, done) => done(null, body));

  const infer = async (request: FastifyRequest, name: string, version: string | undefined) => {
    const t0 = performance.now();
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const engine = app.lifecycle.requireEngine();
    const model: ModelInfo | undefined = engine.model(name, version);
    if (!model) throw new Problem('model-not-found', `model ${version ? `${name}:${version}` : name} not found`, { code: 'MODEL_NOT_FOUND' });
    const { json, binary } = splitBody(body, request.headers[INFERENCE_HEADER]);
    const req = parseRequest(json);
    const labels = model.manifest.labels;
    const opts = options(req.parameters);

    // Inputs: the binary part, cut per binary_data_size in input order.
    const input = req.inputs[0]!;
    let offset = 0;
    const size = input.parameters?.binary_data_size;
    let chunk: Buffer | undefined;
    if (size !== undefined) {
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) throw bad(`input ${input.name}: binary_data_size must be an integer >= 0`);
      if (offset + size > binary.length) throw bad(`input ${input.name}: binary_data_size ${size} exceeds the ${binary.length - offset} binary bytes after the JSON`);
      chunk = binary.subarray(offset, offset + size);
      offset += size;
    }
    if (offset !== binary.length) throw bad(`${binary.length - offset} bytes of binary data after the JSON belong to no input (binary_data_size)`);

    // Outputs asked for, checked before any work.
    const wanted = req.outputs ?? [{ name: OIP_OUTPUTS.mask }, { name: OIP_OUTPUTS.labels }];
    const available = [OIP_OUTPUTS.mask, OIP_OUTPUTS.labels, ...labels.map((l) => OIP_OUTPUTS.labelPrefix + l), OIP_OUTPUTS.probabilities];
    for (const o of wanted) {
      if (!available.includes(o.name)) throw bad(`unknown output ${JSON.stringify(o.name)}; this model produces ${available.map((a) => JSON.stringify(a)).join(', ')}`, 'OIP_UNKNOWN_OUTPUT');
      if (o.name === OIP_OUTPUTS.probabilities) {
        throw new Problem('http', 'output "probabilities" is not available yet: the engine returns thresholded masks only; ask for "mask"', { status: 501, code: 'OIP_NOT_IMPLEMENTED' });
      }
      const b = o.parameters?.binary_data;
      if (b !== undefined && typeof b !== 'boolean') throw bad(`output ${o.name}: parameter binary_data must be a boolean`, 'VALIDATION');
    }

    if (input.datatype === 'FP32') {
      const mf = model.manifest.input;
      if (input.name !== mf.name) throw bad(`FP32 input must be the model input ${JSON.stringify(mf.name)}, got ${JSON.stringify(input.name)}`);
      const want = mf.shape.map((d) => (typeof d === 'number' ? d : -1));
      const ok = input.shape.length === want.length && want.every((d, k) => d === -1 || d === input.shape[k]);
      if (!ok) throw bad(`FP32 input ${mf.name}: shape [${input.shape.join(', ')}] does not match the model's [${want.join(', ')}]`);
      throw new Problem('http', 'FP32 (preprocessed tensor) input is not available yet: the engine runs DICOM only; send the DICOM file as a BYTES input', {
        status: 501,
        code: 'OIP_NOT_IMPLEMENTED',
      });
    }
    if (input.datatype !== 'BYTES') throw bad(`input ${input.name}: datatype ${input.datatype} is not accepted; send BYTES (DICOM files) or FP32 (${model.manifest.input.name}, NCHW)`);
    const files = dicomFiles(input, () => chunk);

    let results: SegmentResult[];
    try {
      results = await Promise.all(
        files.map((dicom) =>
          engine.segment({ dicom, model: model.name, version, threshold: opts.threshold, minArea: opts.minArea, tta: opts.tta, frame: opts.frame }),
        ),
      );
      for (const r of results) app.metrics.segmentation(model.name, 'ok', r.timings);
    } catch (e) {
      app.metrics.segmentation(model.name, 'error');
      throw e;
    }

    const tensors: Tensor[] = wanted.map((o) => {
      const binaryOut = (o.parameters?.binary_data as boolean | undefined) ?? opts.binaryOutput;
      if (o.name === OIP_OUTPUTS.labels) return tensor(o.name, 'BYTES', [labels.length], labels, binaryOut);
      const only = o.name === OIP_OUTPUTS.mask ? labels : [o.name.slice(OIP_OUTPUTS.labelPrefix.length)];
      const stacked = stackMasks(results, only);
      return tensor(o.name, 'UINT8', stacked.shape, stacked.data, binaryOut);
    });
    const first = results[0]!;
    const response = {
      model_name: first.model.name,
      model_version: first.model.version,
      ...(req.id !== undefined ? { id: req.id } : {}),
      parameters: { execution_provider: first.model.executionProvider, total_ms: Math.round((performance.now() - t0) * 100) / 100 },
      outputs: tensors.map((t) => t.out),
    };
    return { response, binaries: tensors.flatMap((t) => (t.bytes ? [t.bytes] : [])) };
  };

  const send = async (request: FastifyRequest, reply: import('fastify').FastifyReply, name: string, version?: string) => {
    const { response, binaries } = await infer(request, name, version);
    const head = Buffer.from(JSON.stringify(response), 'utf8');
    if (binaries.length === 0) return reply.type('application/json; charset=utf-8').send(head);
    reply.header('Inference-Header-Content-Length', String(head.length));
    return reply.type('application/octet-stream').send(Buffer.concat([head, ...binaries]));
  };

  app.post(
    '/v2/models/:name/infer',
    { schema: inferSchema(ModelParamsSchema, 'oipInfer', 'OIP inference (active version)') },
    async (request, reply) => send(request, reply, (request.params as { name: string }).name),
  );
  app.post(
    '/v2/models/:name/versions/:version/infer',
    { schema: inferSchema(ModelVersionParamsSchema, 'oipInferVersion', 'OIP inference (one version)') },
    async (request, reply) => {
      const p = request.params as { name: string; version: string };
      return send(request, reply, p.name, p.version);
    },
  );
};
export default v2InferRoutes;
