/**
 * Open Inference Protocol (KServe v2) inference: POST /v2/models/{name}[/versions/{version}]/infer.
 *
 * Inputs: one tensor, either BYTES holding DICOM Part 10 files (shape [N]; the full POST /segment
 * path: decode, preprocess, model, post-processing) or FP32 NCHW named and shaped as the manifest
 * declares (the preprocessed tensor: Engine.infer, the same admission, batcher and deadlines without
 * the decode/preprocess task). Outputs, per the request's `outputs` (default `mask` and `labels`):
 * `mask` UINT8 [N, C, rows, cols] (one channel per label, 0/1; at the image's own resolution for
 * BYTES, at the model's output H x W for FP32), `mask:<label>` UINT8 [N, 1, rows, cols], `labels`
 * BYTES [C], `probabilities` FP32 [N, C, H, W] (after the manifest's activation, at the model's output
 * size, for either input). Both JSON tensors and the binary tensor data extension
 * (Inference-Header-Content-Length, `binary_data_size`, `binary_data`, `binary_data_output`) are read
 * and written. Errors are problem+json bodies that also carry the protocol's `error` member.
 */
import { endianness } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ModelInfo } from '../../core/engine/index.ts';
import type { ModelRef, SegmentedMask } from '../../core/segmentation/records.ts';
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
    if (o + 4 > buf.length) throw badTensor(name, `truncated BYTES element length at byte ${o}`);
    const len = buf.readUInt32LE(o);
    if (o + 4 + len > buf.length) throw badTensor(name, `BYTES element ${out.length} claims ${len} bytes, ${buf.length - o - 4} left`);
    out.push(buf.subarray(o + 4, o + 4 + len));
    o += 4 + len;
  }
  if (out.length !== count) throw badTensor(name, `shape holds ${count} elements, the binary data ${out.length}`);
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

/** The DICOM files of a BYTES input (JSON base64 strings or binary elements); at most `maxImages`. */
function dicomFiles(input: OipInferenceRequest['inputs'][number], binary: () => Buffer | undefined, maxImages: number): Buffer[] {
  const count = input.shape.reduce((a, b) => a * b, 1);
  if (input.shape.length < 1 || input.shape.length > 2 || (input.shape.length === 2 && input.shape[1] !== 1)) {
    throw badTensor(input.name, `BYTES shape must be [N] or [N, 1] (one DICOM file per element), got [${input.shape.join(', ')}]`);
  }
  if (count < 1) throw badTensor(input.name, `no DICOM file (shape [${input.shape.join(', ')}])`);
  if (count > maxImages) throw tooMany(input.name, count, maxImages);
  const bin = binary();
  if (bin) return readBytesElements(bin, count, input.name);
  if (!input.data) throw badTensor(input.name, 'no data (give "data" or the binary_data_size parameter)');
  const items = flatten(input.data);
  if (items.length !== count) throw badTensor(input.name, `shape holds ${count} elements, data ${items.length}`);
  return items.map((v, k) => {
    if (typeof v !== 'string') throw badTensor(input.name, `BYTES element ${k} must be a base64 string of a DICOM file`);
    const s = v.replace(/\s+/g, '');
    if (!BASE64.test(s)) throw badTensor(input.name, `BYTES element ${k} is not base64 (in the JSON form a DICOM is sent base64-encoded; or use the binary tensor data extension)`);
    return Buffer.from(s, 'base64');
  });
}

/**
 * N above the engine's queue bound (MAX_QUEUE: the images it admits at once) could never be admitted
 * beside other work: 400 OIP_TOO_MANY_IMAGES, before the data is read.
 */
const tooMany = (name: string, n: number, max: number) =>
  bad(`input ${name}: ${n} images in one request, more than the ${max} the server admits at once (MAX_QUEUE); send them in smaller requests`, 'OIP_TOO_MANY_IMAGES');

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

/** A problem with an input tensor (shape, size, datatype, values): 400 OIP_BAD_TENSOR, the detail names the tensor. */
const badTensor = (name: string, detail: string) => bad(`input ${name}: ${detail}`, 'OIP_BAD_TENSOR');

/** Tensors travel little-endian (binary tensor data extension); this host's typed arrays are native-endian. */
const LITTLE_ENDIAN = endianness() === 'LE';

/** [n, c, y, x] of a flat NCHW index, for messages. */
function nchwIndex(k: number, [, c, h, w]: readonly number[]): string {
  const x = k % w!;
  const y = Math.floor(k / w!) % h!;
  const ch = Math.floor(k / (w! * h!)) % c!;
  const n = Math.floor(k / (w! * h! * c!));
  return `[${n}, ${ch}, ${y}, ${x}]`;
}

/**
 * The FP32 input's values (JSON `data`, flat or nested, row-major; or `binary_data_size` little-endian
 * bytes), in a Float32Array of its own. Every value must be finite (a NaN or Infinity, or a JSON
 * number beyond FP32's range, is 400).
 */
function fp32Values(input: OipInferenceRequest['inputs'][number], shape: readonly number[], bin: Buffer | undefined): Float32Array {
  const count = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(count);
  if (bin) {
    if (bin.length !== count * 4) throw badTensor(input.name, `binary_data_size is ${bin.length} bytes; shape [${shape.join(', ')}] needs ${count * 4} (${count} little-endian FP32 values)`);
    if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bin);
    else for (let k = 0; k < count; k++) out[k] = bin.readFloatLE(4 * k);
  } else {
    if (!input.data) throw badTensor(input.name, 'no data (give "data" or the binary_data_size parameter)');
    const items = flatten(input.data);
    if (items.length !== count) throw badTensor(input.name, `shape [${shape.join(', ')}] holds ${count} values, data ${items.length}`);
    for (let k = 0; k < count; k++) {
      const v = items[k];
      if (typeof v !== 'number') throw badTensor(input.name, `element ${k} ${nchwIndex(k, shape)} is ${JSON.stringify(v)}, not a number (FP32 data is JSON numbers)`);
      out[k] = v;
    }
  }
  for (let k = 0; k < count; k++) {
    if (!Number.isFinite(out[k]!)) {
      const sent = bin ? String(out[k]) : `${JSON.stringify(flatten(input.data!)[k])} (${String(out[k])} in FP32)`;
      throw badTensor(input.name, `element ${k} ${nchwIndex(k, shape)} is ${sent}; FP32 input must be finite (no NaN or Infinity)`);
    }
  }
  return out;
}

/** One output tensor: its JSON descriptor and, when binary, its bytes. */
interface Tensor {
  out: OipResponseOutput;
  bytes?: Buffer;
}

type TensorValues = { datatype: 'UINT8'; values: Uint8Array } | { datatype: 'FP32'; values: Float32Array } | { datatype: 'BYTES'; values: string[] };

function tensor(name: string, shape: number[], t: TensorValues, binary: boolean): Tensor {
  if (binary) {
    let bytes: Buffer;
    if (t.datatype === 'BYTES') bytes = writeBytesElements(t.values);
    else if (t.datatype === 'FP32' && !LITTLE_ENDIAN) {
      bytes = Buffer.alloc(t.values.length * 4);
      t.values.forEach((v, k) => bytes.writeFloatLE(v, 4 * k));
    } else bytes = Buffer.from(t.values.buffer, t.values.byteOffset, t.values.byteLength);
    return { out: { name, datatype: t.datatype, shape, parameters: { binary_data_size: bytes.length } }, bytes };
  }
  // FP32 values go out as the doubles they are: JSON's shortest form, which parses back to the same FP32.
  return { out: { name, datatype: t.datatype, shape, data: t.datatype === 'BYTES' ? t.values : Array.from(t.values as ArrayLike<number>) } };
}

/** What the engine returned, per image, in one form for either input kind. */
interface Answer {
  model: ModelRef;
  /** Per image: its masks and their size (the image's for BYTES, the model's output size for FP32). */
  images: Array<{ masks: SegmentedMask[]; rows: number; cols: number; probabilities?: Float32Array }>;
  /** Model output C, H, W. */
  outputShape: [number, number, number];
}

/**
 * One label's mask pixels. A softmax model reports no mask for its background label: its channel is
 * the pixels no other label's mask holds.
 */
function labelPlane(masks: SegmentedMask[], label: string, plane: number): Uint8Array {
  const m = masks.find((x) => x.label === label);
  if (m) return m.mask.data;
  const out = new Uint8Array(plane).fill(1);
  for (const x of masks) for (let i = 0; i < plane; i++) if (x.mask.data[i]) out[i] = 0;
  return out;
}

/** Label masks of every image, stacked N x C x rows x cols. */
function stackMasks(images: Answer['images'], labels: readonly string[]): { shape: number[]; data: Uint8Array } {
  const { rows, cols } = images[0]!;
  for (const r of images) {
    if (r.rows !== rows || r.cols !== cols) {
      throw bad(`the images differ in size (${rows}x${cols} and ${r.rows}x${r.cols}); a mask tensor needs one size: send them in separate requests`);
    }
  }
  const plane = rows * cols;
  const data = new Uint8Array(images.length * labels.length * plane);
  images.forEach((r, n) => labels.forEach((label, c) => data.set(labelPlane(r.masks, label, plane), (n * labels.length + c) * plane)));
  return { shape: [images.length, labels.length, rows, cols], data };
}

/** Every image's probabilities, N x C x H x W (one image's array as it is; several, one copy). */
function stackProbabilities(a: Answer): { shape: number[]; data: Float32Array } {
  const per = a.images.map((i) => i.probabilities!);
  const data = per.length === 1 ? per[0]! : new Float32Array(per.reduce((n, p) => n + p.length, 0));
  if (per.length > 1) per.forEach((p, k) => data.set(p, k * p.length));
  return { shape: [per.length, ...a.outputShape], data };
}

const inferSchema = (params: z.ZodType, operationId: string, summary: string) => ({
  tags: [TAGS.oip],
  operationId,
  summary,
  description: `Open Inference Protocol (KServe v2) inference, JSON tensors or the binary tensor data extension.

**Input** (exactly one): \`BYTES\` with shape [N], each element one DICOM Part 10 file (base64 in
JSON \`data\`; raw in the binary form), segmented exactly as POST /segment does; or \`FP32\` [N, C, H, W]
named and shaped as the manifest's input (see GET /v2/models/{name}): the preprocessed tensor, row-major
(JSON \`data\` flat or nested; binary: little-endian FP32), every value finite, run through the same
queue and batches as DICOM requests without decoding or preprocessing. N is at most the server's
MAX_QUEUE (400 OIP_TOO_MANY_IMAGES); a tensor whose shape, size, datatype or values are wrong is 400
OIP_BAD_TENSOR naming it.

**Outputs** (request \`outputs\`, default \`mask\` and \`labels\`): \`mask\` UINT8 [N, C, rows, cols], one
0/1 channel per label in the model's label order (a softmax model's background channel: the pixels no
other label holds), at the image's own resolution for BYTES and at the model's output H x W for FP32;
\`mask:<label>\` UINT8 [N, 1, rows, cols]; \`labels\` BYTES [C]; \`probabilities\` FP32 [N, C, H, W], the
model output after the manifest's activation (sigmoid or softmax; with \`tta\`, averaged with the
flipped image's), at the model's output size for either input (not resampled to the image).

**Parameters** (request \`parameters\`): \`threshold\`, \`min_area\` as POST /segment's query (both inputs);
\`tta\`, \`frame\` (BYTES only); \`binary_data_output\`. Unknown parameters are ignored.

**Binary tensor data**: an input with parameter \`binary_data_size\` is read from the body after the JSON
object, whose length the \`Inference-Header-Content-Length\` header gives (any Content-Type, e.g.
application/octet-stream); BYTES elements are a 4-byte little-endian length and the bytes, FP32 values
4 little-endian bytes each. An output with parameter \`binary_data: true\` (or all, with
\`binary_data_output: true\`) comes back the same way: Content-Type application/octet-stream,
\`Inference-Header-Content-Length\`, each tensor's \`binary_data_size\`.

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
    503: Problems.unavailable,
  },
});

const v2InferRoutes: FastifyPluginAsyncZod = async (app) => {
  const limit = app.config.bodyLimitBytes;
  // Any Content-Type (tritonclient sends none with a binary body, others application/json or
  // application/octet-stream): the body is read whole and split by Inference-Header-Content-Length.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limit }, (_req, body, done) => done(null, body));

  const maxImages = app.config.maxQueue;

  const infer = async (request: FastifyRequest, signal: AbortSignal, name: string, version: string | undefined) => {
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
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) throw badTensor(input.name, 'binary_data_size must be an integer >= 0');
      if (offset + size > binary.length) throw badTensor(input.name, `binary_data_size ${size} exceeds the ${binary.length - offset} binary bytes after the JSON`);
      chunk = binary.subarray(offset, offset + size);
      offset += size;
    }
    if (offset !== binary.length) throw bad(`${binary.length - offset} bytes of binary data after the JSON belong to no input (binary_data_size)`);

    // Outputs asked for, checked before any work.
    const wanted = req.outputs ?? [{ name: OIP_OUTPUTS.mask }, { name: OIP_OUTPUTS.labels }];
    const available: string[] = [OIP_OUTPUTS.mask, OIP_OUTPUTS.labels, ...labels.map((l) => OIP_OUTPUTS.labelPrefix + l), OIP_OUTPUTS.probabilities];
    for (const o of wanted) {
      if (!available.includes(o.name)) throw bad(`unknown output ${JSON.stringify(o.name)}; this model produces ${available.map((a) => JSON.stringify(a)).join(', ')}`, 'OIP_UNKNOWN_OUTPUT');
      const b = o.parameters?.binary_data;
      if (b !== undefined && typeof b !== 'boolean') throw bad(`output ${o.name}: parameter binary_data must be a boolean`, 'VALIDATION');
    }
    const wantsProbabilities = wanted.some((o) => o.name === OIP_OUTPUTS.probabilities);
    const wantsMasks = wanted.some((o) => o.name === OIP_OUTPUTS.mask || o.name.startsWith(OIP_OUTPUTS.labelPrefix));
    // Masks unless only probabilities are asked for (asked for labels alone, the input still runs, for its masks).
    const runMasks = wantsMasks || !wantsProbabilities;

    let answer: Answer;
    try {
      if (input.datatype === 'FP32') {
        const mf = model.manifest.input;
        if (input.name !== mf.name) throw badTensor(input.name, `an FP32 input must be the model input ${JSON.stringify(mf.name)}`);
        const want = mf.shape.map((d) => (typeof d === 'number' ? d : -1));
        // N is free (a fixed batch dimension is the engine's business: it pads and splits); C, H, W are the model's.
        const ok = input.shape.length === 4 && input.shape[0]! >= 1 && want.every((d, k) => k === 0 || d === input.shape[k]);
        if (!ok) throw badTensor(input.name, `shape [${input.shape.join(', ')}] does not match the model's [${want.join(', ')}] (N >= 1)`);
        if (input.shape[0]! > maxImages) throw tooMany(input.name, input.shape[0]!, maxImages);
        if (opts.tta !== undefined || opts.frame !== undefined) {
          throw bad(`parameter ${opts.tta !== undefined ? 'tta' : 'frame'} applies to BYTES (DICOM) input only; an FP32 input is run as sent`, 'VALIDATION');
        }
        const tensorData = fp32Values(input, input.shape, chunk);
        const r = await engine.infer({
          model: model.name,
          version,
          tensor: tensorData,
          transferTensor: true,
          outputs: { masks: runMasks, probabilities: wantsProbabilities },
          rules: { ...(opts.threshold !== undefined ? { threshold: opts.threshold } : {}), ...(opts.minArea !== undefined ? { minArea: opts.minArea } : {}) },
          signal,
        });
        app.metrics.segmentation(model.name, 'ok', r.timings);
        const [, height, width] = r.outputShape;
        answer = {
          model: r.model,
          outputShape: r.outputShape,
          images: r.images.map((i) => ({ masks: i.masks ?? [], rows: height, cols: width, ...(i.probabilities ? { probabilities: i.probabilities } : {}) })),
        };
      } else {
        if (input.datatype !== 'BYTES') throw badTensor(input.name, `datatype ${input.datatype} is not accepted; send BYTES (DICOM files) or FP32 (${model.manifest.input.name}, NCHW)`);
        const files = dicomFiles(input, () => chunk, maxImages);
        const results = await Promise.all(
          files.map((dicom) =>
            engine.segment({
              dicom,
              model: model.name,
              version,
              threshold: opts.threshold,
              minArea: opts.minArea,
              tta: opts.tta,
              frame: opts.frame,
              probabilities: wantsProbabilities,
              masks: runMasks,
              signal,
            }),
          ),
        );
        for (const r of results) app.metrics.segmentation(model.name, 'ok', r.timings);
        const [, c, height, width] = model.manifest.output.shape;
        answer = {
          model: results[0]!.model,
          outputShape: [c, height, width],
          images: results.map((r) => ({ masks: r.masks, rows: r.image.rows, cols: r.image.columns, ...(r.probabilities ? { probabilities: r.probabilities } : {}) })),
        };
      }
    } catch (e) {
      // Bad input found before the engine ran counts as no segmentation at all.
      if (!(e instanceof Problem)) app.metrics.segmentation(model.name, 'error');
      throw e;
    }

    const tensors: Tensor[] = wanted.map((o) => {
      const binaryOut = (o.parameters?.binary_data as boolean | undefined) ?? opts.binaryOutput;
      if (o.name === OIP_OUTPUTS.labels) return tensor(o.name, [labels.length], { datatype: 'BYTES', values: labels }, binaryOut);
      if (o.name === OIP_OUTPUTS.probabilities) {
        const p = stackProbabilities(answer);
        return tensor(o.name, p.shape, { datatype: 'FP32', values: p.data }, binaryOut);
      }
      const only = o.name === OIP_OUTPUTS.mask ? labels : [o.name.slice(OIP_OUTPUTS.labelPrefix.length)];
      const stacked = stackMasks(answer.images, only);
      return tensor(o.name, stacked.shape, { datatype: 'UINT8', values: stacked.data }, binaryOut);
    });
    const response = {
      model_name: answer.model.name,
      model_version: answer.model.version,
      ...(req.id !== undefined ? { id: req.id } : {}),
      parameters: { execution_provider: answer.model.executionProvider, total_ms: Math.round((performance.now() - t0) * 100) / 100 },
      outputs: tensors.map((t) => t.out),
    };
    return { response, binaries: tensors.flatMap((t) => (t.bytes ? [t.bytes] : [])) };
  };

  const send = async (request: FastifyRequest, reply: FastifyReply, name: string, version?: string) => {
    // A client that goes away cancels its request, as on POST /segment: dropped from the queue, or its
    // result discarded (CANCELLED, 499: logged, nothing sent). The response's 'close' before it
    // finished is the client leaving.
    const abort = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableFinished) abort.abort();
    };
    reply.raw.once('close', onClose);
    const { response, binaries } = await infer(request, abort.signal, name, version);
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
