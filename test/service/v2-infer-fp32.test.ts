/**
 * Open Inference Protocol (KServe v2) inference with an FP32 input (the preprocessed NCHW tensor) and
 * the `probabilities` output, on the two demo models (sigmoid pneumothorax at 256, softmax multi-class
 * at 128) and a fixture model. The FP32 tensors are the processor's own preprocess of synthetic
 * DICOMs, so the references are independent of the route: the same DICOM sent as BYTES (masks must be
 * identical where the image is the model's size), and a plain onnxruntime-node session of the same
 * model file followed by the activation (core/segmentation/activation.ts, the only one) for the
 * probabilities. Requests follow the protocol's published shapes: JSON `data` flat row-major, and the
 * binary tensor data extension (Inference-Header-Content-Length, little-endian FP32 after the JSON,
 * `binary_data_size`, `binary_data` per output).
 */
import assert from 'node:assert/strict';
import { cp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { decodeDicom } from '../../core/dicom/decode.ts';
import { ModelManifestSchema, type ModelManifest } from '../../core/manifest.ts';
import { toProbabilitiesInPlace } from '../../core/segmentation/activation.ts';
import { SegmentationProcessor } from '../../core/segmentation/processor.ts';
import { chestDicom } from '../../synth/index.ts';
import { modelRepository, REPO_ROOT, SMALL_MODEL, startInProcess, testDicom, type InProcess } from './helpers.ts';

const DUO = { name: 'duo', version: '3', size: 64, depth: 2, baseChannels: 4, classes: 2, labels: ['left', 'right'], seed: 3 };
const PTX = 'synthetic-pneumothorax';
const MULTI = 'synthetic-thorax-multiclass';
const MAX_QUEUE = 8;

type Tensor = { name: string; shape: number[]; datatype: string; parameters?: Record<string, unknown>; data?: unknown[] };
type InferResponse = { model_name: string; model_version: string; id?: string; parameters?: Record<string, unknown>; outputs: Tensor[] };
type Values = Uint8Array | Float32Array | string[];

/** A response decoded as the spec says: JSON part, then each binary output's bytes in output order. */
async function decode(r: Response): Promise<{ head: InferResponse; values: Map<string, Values> }> {
  const buf = Buffer.from(await r.arrayBuffer());
  const hl = r.headers.get('inference-header-content-length');
  const headLen = hl === null ? buf.length : Number(hl);
  const head = JSON.parse(buf.subarray(0, headLen).toString('utf8')) as InferResponse;
  const values = new Map<string, Values>();
  let o = headLen;
  for (const t of head.outputs) {
    const size = t.parameters?.binary_data_size as number | undefined;
    if (size === undefined) {
      const d = t.data!;
      values.set(t.name, t.datatype === 'FP32' ? Float32Array.from(d as number[]) : t.datatype === 'UINT8' ? Uint8Array.from(d as number[]) : (d as string[]));
      continue;
    }
    const bytes = buf.subarray(o, o + size);
    o += size;
    if (t.datatype === 'FP32') {
      const f = new Float32Array(size / 4);
      for (let k = 0; k < f.length; k++) f[k] = bytes.readFloatLE(4 * k);
      values.set(t.name, f);
    } else values.set(t.name, new Uint8Array(bytes));
  }
  assert.equal(o, buf.length, 'binary part fully accounted for by binary_data_size');
  return { head, values };
}

/** Little-endian FP32 bytes, as the binary tensor data extension sends them. */
function le(f: Float32Array): Buffer {
  const b = Buffer.alloc(f.length * 4);
  f.forEach((v, k) => b.writeFloatLE(v, 4 * k));
  return b;
}

function concat(arrays: Float32Array[]): Float32Array {
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('OIP (KServe v2) inference: FP32 input and probabilities output', () => {
  let repo: { dir: string; remove: () => Promise<void> };
  let srv: InProcess;
  const manifests = new Map<string, ModelManifest>();
  const sessions = new Map<string, ort.InferenceSession>();
  let ptxDicom: Uint8Array;
  let ptxDicom2: Uint8Array;
  let multiDicom: Uint8Array;

  before(async () => {
    repo = await modelRepository([SMALL_MODEL, DUO]);
    for (const m of [PTX, MULTI]) await cp(join(REPO_ROOT, 'models', m), join(repo.dir, m), { recursive: true });
    for (const [name, version] of [[PTX, '1'], [MULTI, '1'], ['duo', '3']] as const) {
      const dir = join(repo.dir, name, version);
      manifests.set(name, ModelManifestSchema.parse(JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'))));
      sessions.set(name, await ort.InferenceSession.create(join(dir, 'model.onnx')));
    }
    ptxDicom = (await chestDicom(3, { size: 256, lesions: 1 })).bytes;
    ptxDicom2 = (await chestDicom(11, { size: 256, lesions: 1 })).bytes;
    multiDicom = (await chestDicom(5, { size: 128, lesions: 1 })).bytes;
    srv = await startInProcess({ MODEL_REPOSITORY: repo.dir, DEFAULT_MODEL: 'tiny', MAX_QUEUE: String(MAX_QUEUE) });
  });
  after(async () => {
    await srv?.close();
    for (const s of sessions.values()) await s.release();
    await repo?.remove();
  });

  const post = (path: string, body: string | Uint8Array, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(`${srv.url}${path}`, { method: 'POST', body, headers });
  /** The binary form: JSON header, then the tensor bytes; octet-stream with the header length. */
  const postBinary = (path: string, header: unknown, data: Uint8Array) => {
    const json = Buffer.from(JSON.stringify(header));
    return post(path, Buffer.concat([json, data]), { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(json.length) });
  };

  /** The processor's own preprocess of a DICOM (what the worker does before the model). */
  async function preprocess(model: string, dicom: Uint8Array): Promise<Float32Array> {
    return SegmentationProcessor.fromManifest(manifests.get(model)!).preprocess(await decodeDicom(dicom))[0]!;
  }

  /** The reference: a plain session run of the model file, then the manifest's activation. */
  async function reference(model: string, images: Float32Array[]): Promise<Float32Array> {
    const m = manifests.get(model)!;
    const [, c, h, w] = m.input.shape;
    const out = (await sessions.get(model)!.run({ [m.input.name]: new ort.Tensor('float32', concat(images), [images.length, c, h, w]) }))[m.output.name] as ort.Tensor;
    const [, oc, oh, ow] = m.output.shape;
    return toProbabilitiesInPlace(new Float32Array(out.data as Float32Array), m.output.activation, oc, oh * ow);
  }

  const bytesRequest = (dicoms: Uint8Array[], outputs: string[]) => ({
    inputs: [{ name: 'dicom', shape: [dicoms.length], datatype: 'BYTES', data: dicoms.map((d) => Buffer.from(d).toString('base64')) }],
    outputs: outputs.map((name) => ({ name })),
  });
  const fp32Request = (model: string, images: Float32Array[], outputs: string[], parameters?: Record<string, unknown>) => {
    const m = manifests.get(model)!;
    const [, c, h, w] = m.input.shape;
    return {
      id: 'fp32',
      inputs: [{ name: m.input.name, shape: [images.length, c, h, w], datatype: 'FP32', data: Array.from(concat(images)) }],
      outputs: outputs.map((name) => ({ name })),
      ...(parameters ? { parameters } : {}),
    };
  };

  for (const [model, label] of [
    [PTX, 'sigmoid, 256x256'],
    [MULTI, 'softmax, 128x128'],
  ] as const) {
    it(`${model} (${label}): FP32 from the processor's preprocess gives exactly the BYTES masks; probabilities match a plain ORT run + activation; JSON and binary agree`, async () => {
      const dicom = model === PTX ? ptxDicom : multiDicom;
      const m = manifests.get(model)!;
      const [, c, h, w] = m.output.shape;
      const tensor = await preprocess(model, dicom);

      // BYTES (the DICOM; its size is the model's, so its masks are at model resolution too).
      const viaBytes = await decode(await post(`/v2/models/${model}/infer`, JSON.stringify(bytesRequest([dicom], ['mask', 'probabilities', 'labels']))));
      // FP32, JSON data.
      const rJson = await post(`/v2/models/${model}/infer`, JSON.stringify(fp32Request(model, [tensor], ['mask', 'probabilities', 'labels'])));
      assert.equal(rJson.status, 200, await rJson.clone().text());
      assert.match(rJson.headers.get('content-type') ?? '', /^application\/json/);
      const viaJson = await decode(rJson);
      // FP32, binary in and out.
      const [, ic, ih, iw] = m.input.shape;
      const data = le(tensor);
      const rBin = await postBinary(
        `/v2/models/${model}/versions/1/infer`,
        {
          inputs: [{ name: m.input.name, shape: [1, ic, ih, iw], datatype: 'FP32', parameters: { binary_data_size: data.length } }],
          outputs: [{ name: 'probabilities', parameters: { binary_data: true } }, { name: 'mask', parameters: { binary_data: true } }, { name: 'labels' }],
        },
        data,
      );
      assert.equal(rBin.status, 200, await rBin.clone().text());
      assert.match(rBin.headers.get('content-type') ?? '', /^application\/octet-stream/);
      const viaBin = await decode(rBin);

      assert.equal(viaJson.head.id, 'fp32');
      assert.deepEqual(
        viaJson.head.outputs.map((o) => [o.name, o.datatype, o.shape]),
        [
          ['mask', 'UINT8', [1, c, h, w]],
          ['probabilities', 'FP32', [1, c, h, w]],
          ['labels', 'BYTES', [c]],
        ],
      );
      assert.deepEqual(viaBin.head.outputs.map((o) => [o.name, o.shape, o.parameters?.binary_data_size]), [
        ['probabilities', [1, c, h, w], c * h * w * 4],
        ['mask', [1, c, h, w], c * h * w],
        ['labels', [c], undefined],
      ]);
      assert.deepEqual(viaJson.values.get('labels'), m.labels);

      // Masks: FP32 (JSON, binary) and BYTES identical, and not trivial.
      const mask = viaJson.values.get('mask') as Uint8Array;
      assert.deepEqual(viaBin.values.get('mask'), mask);
      assert.deepEqual(viaBytes.values.get('mask'), mask);
      assert.ok(mask.some((v) => v === 1) && mask.some((v) => v === 0), 'masks are neither empty nor full');
      if (m.output.activation === 'softmax') {
        // One class per pixel: the channels (background = no other label) partition the image.
        for (let i = 0; i < h * w; i++) {
          let n = 0;
          for (let k = 0; k < c; k++) n += mask[k * h * w + i]!;
          assert.equal(n, 1, `pixel ${i} in exactly one class`);
        }
      }

      // Probabilities: JSON's numbers are the binary's FP32 values exactly; both (and BYTES') match the plain run.
      const pJson = viaJson.values.get('probabilities') as Float32Array;
      const pBin = viaBin.values.get('probabilities') as Float32Array;
      assert.deepEqual(pJson, pBin);
      const ref = await reference(model, [tensor]);
      assert.ok(maxAbsDiff(pJson, ref) < 1e-5, `FP32 input vs plain ORT: max |diff| ${maxAbsDiff(pJson, ref)}`);
      assert.ok(maxAbsDiff(viaBytes.values.get('probabilities') as Float32Array, ref) < 1e-5, 'BYTES input vs plain ORT');
      // BYTES asking for probabilities only (no post-processing in the engine): the same values.
      const probOnly = await decode(await post(`/v2/models/${model}/infer`, JSON.stringify(bytesRequest([dicom], ['probabilities']))));
      assert.deepEqual(probOnly.values.get('probabilities'), viaBytes.values.get('probabilities'));
      // The masks are the threshold rule over these probabilities (sigmoid: p > threshold).
      if (m.output.activation === 'logits') {
        const t = m.postprocessing.threshold;
        let disagree = 0;
        for (let i = 0; i < ref.length; i++) if (Math.abs(ref[i]! - t) > 1e-4 && mask[i] !== (ref[i]! > t ? 1 : 0)) disagree++;
        assert.equal(disagree, 0);
      }
    });
  }

  it('a batch of two FP32 images answers each as alone; BYTES of another size gives its masks at the image size and probabilities at the model size', async () => {
    const a = await preprocess(PTX, ptxDicom);
    const b = await preprocess(PTX, ptxDicom2);
    const both = await decode(await post(`/v2/models/${PTX}/infer`, JSON.stringify(fp32Request(PTX, [a, b], ['probabilities', 'mask'], { binary_data_output: true }))));
    const one = await decode(await post(`/v2/models/${PTX}/infer`, JSON.stringify(fp32Request(PTX, [b], ['probabilities', 'mask']))));
    const plane = 256 * 256;
    assert.deepEqual(both.head.outputs.map((o) => o.shape), [
      [2, 1, 256, 256],
      [2, 1, 256, 256],
    ]);
    const ref = await reference(PTX, [a, b]);
    assert.ok(maxAbsDiff(both.values.get('probabilities') as Float32Array, ref) < 1e-5);
    assert.ok(maxAbsDiff((both.values.get('probabilities') as Float32Array).subarray(plane), one.values.get('probabilities') as Float32Array) < 1e-5);
    assert.notDeepEqual((both.values.get('mask') as Uint8Array).subarray(0, plane), (both.values.get('mask') as Uint8Array).subarray(plane), 'two different images');

    // The fixture model with a 96x80 DICOM: masks at 96x80, probabilities at the model's 64x64.
    const dicom = testDicom();
    const r = await decode(await post('/v2/models/duo/infer', JSON.stringify(bytesRequest([dicom], ['mask', 'probabilities', 'mask:right']))));
    assert.deepEqual(r.head.outputs.map((o) => [o.name, o.shape]), [
      ['mask', [1, 2, 96, 80]],
      ['probabilities', [1, 2, 64, 64]],
      ['mask:right', [1, 1, 96, 80]],
    ]);
    const ref2 = await reference('duo', [await preprocess('duo', dicom)]);
    assert.ok(maxAbsDiff(r.values.get('probabilities') as Float32Array, ref2) < 1e-5);
    // tta averages the probabilities with the flipped image's: they change, and stay within [0, 1].
    const tta = await decode(await post('/v2/models/duo/infer', JSON.stringify({ ...bytesRequest([dicom], ['probabilities']), parameters: { tta: true } })));
    const pt = tta.values.get('probabilities') as Float32Array;
    assert.ok(maxAbsDiff(pt, ref2) > 1e-6 && pt.every((v) => v >= 0 && v <= 1));
  });

  it('threshold and min_area apply to FP32 input; only labels asked for still checks and runs the tensor', async () => {
    const t = await preprocess(PTX, ptxDicom);
    const area = (r: { values: Map<string, Values> }) => (r.values.get('mask') as Uint8Array).reduce((n, v) => n + v, 0);
    const lo = await decode(await post(`/v2/models/${PTX}/infer`, JSON.stringify(fp32Request(PTX, [t], ['mask'], { threshold: 0.05 }))));
    const hi = await decode(await post(`/v2/models/${PTX}/infer`, JSON.stringify(fp32Request(PTX, [t], ['mask'], { threshold: 0.95 }))));
    const gated = await decode(await post(`/v2/models/${PTX}/infer`, JSON.stringify(fp32Request(PTX, [t], ['mask'], { min_area: 1_000_000 }))));
    assert.ok(area(lo) > area(hi));
    assert.equal(area(gated), 0);
    const labelsOnly = await post(`/v2/models/${PTX}/infer`, JSON.stringify(fp32Request(PTX, [t], ['labels'])));
    assert.equal(labelsOnly.status, 200);
    assert.deepEqual((await decode(labelsOnly)).values.get('labels'), ['pneumothorax']);
  });

  it('GET /v2/models/{name} lists the tensors infer takes and gives: asking for every listed output answers them in the listed shapes', async () => {
    const meta = (await (await fetch(`${srv.url}/v2/models/${MULTI}`)).json()) as { inputs: Tensor[]; outputs: Tensor[] };
    const input = meta.inputs[0]!;
    assert.deepEqual([input.name, input.datatype, input.shape], ['image', 'FP32', [-1, 1, 128, 128]]);
    const t = await preprocess(MULTI, multiDicom);
    const r = await post(`/v2/models/${MULTI}/infer`, JSON.stringify({ inputs: [{ name: input.name, shape: [1, 1, 128, 128], datatype: input.datatype, data: Array.from(t) }], outputs: meta.outputs.map((o) => ({ name: o.name })) }));
    assert.equal(r.status, 200);
    const { head } = await decode(r);
    for (const [k, o] of meta.outputs.entries()) {
      const got = head.outputs[k]!;
      assert.equal(got.name, o.name);
      assert.equal(got.datatype, o.datatype);
      assert.equal(got.shape.length, o.shape.length);
      o.shape.forEach((d, i) => assert.ok(d === -1 || d === got.shape[i], `${o.name} dim ${i}: ${got.shape[i]} vs ${d}`));
    }
  });

  it('bad FP32 tensors are 400 problem+json naming the tensor, with a code', async () => {
    const n = 64 * 64;
    const ones = (k: number) => new Array<number>(k).fill(0.5);
    const fp = (shape: number[], data: unknown[], extra: Record<string, unknown> = {}) => JSON.stringify({ inputs: [{ name: 'image', shape, datatype: 'FP32', data }], ...extra });
    const bin = (values: Float32Array, shape = [1, 1, 64, 64], size = values.length * 4) => {
      const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', shape, datatype: 'FP32', parameters: { binary_data_size: size } }] }));
      return { body: Buffer.concat([json, le(values)]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(json.length) } };
    };
    const withNaN = new Float32Array(n).fill(0.5);
    withNaN[65] = NaN;
    const withInf = new Float32Array(n).fill(0.5);
    withInf[n - 1] = -Infinity;
    const overflow = ones(n);
    overflow[3] = 1e39;
    const str = ones(n) as unknown[];
    str[7] = 'NaN';
    const cases: Array<[string, string | Uint8Array, Record<string, string>, string, RegExp]> = [
      ['wrong name', JSON.stringify({ inputs: [{ name: 'pixels', shape: [1, 1, 64, 64], datatype: 'FP32', data: ones(n) }] }), {}, 'OIP_BAD_TENSOR', /input pixels: an FP32 input must be the model input "image"/],
      ['wrong rank', fp([1, 64, 64], ones(n)), {}, 'OIP_BAD_TENSOR', /input image: shape \[1, 64, 64\] does not match the model's \[-1, 1, 64, 64\]/],
      ['wrong channels', fp([1, 3, 64, 64], ones(3 * n)), {}, 'OIP_BAD_TENSOR', /shape \[1, 3, 64, 64\] does not match/],
      ['N = 0', fp([0, 1, 64, 64], []), {}, 'OIP_BAD_TENSOR', /\(N >= 1\)/],
      ['too many values', fp([1, 1, 64, 64], ones(n + 1)), {}, 'OIP_BAD_TENSOR', /holds 4096 values, data 4097/],
      ['a string', fp([1, 1, 64, 64], str), {}, 'OIP_BAD_TENSOR', /element 7 \[0, 0, 0, 7\] is "NaN", not a number/],
      ['beyond FP32', fp([1, 1, 64, 64], overflow), {}, 'OIP_BAD_TENSOR', /element 3 \[0, 0, 0, 3\] is 1e\+39 \(Infinity in FP32\); FP32 input must be finite/],
      ['NaN (binary)', bin(withNaN).body, bin(withNaN).headers, 'OIP_BAD_TENSOR', /input image: element 65 \[0, 0, 1, 1\] is NaN; FP32 input must be finite/],
      ['-Infinity (binary)', bin(withInf).body, bin(withInf).headers, 'OIP_BAD_TENSOR', /element 4095 \[0, 0, 63, 63\] is -Infinity/],
      ['binary size', bin(new Float32Array(n - 1)).body, bin(new Float32Array(n - 1)).headers, 'OIP_BAD_TENSOR', /binary_data_size is 16380 bytes; shape \[1, 1, 64, 64\] needs 16384/],
      ['INT32', JSON.stringify({ inputs: [{ name: 'image', shape: [1, 1, 64, 64], datatype: 'INT32', data: ones(n) }] }), {}, 'OIP_BAD_TENSOR', /datatype INT32 is not accepted/],
      ['FP64', JSON.stringify({ inputs: [{ name: 'image', shape: [1, 1, 64, 64], datatype: 'FP64', data: ones(n) }] }), {}, 'OIP_BAD_TENSOR', /datatype FP64 is not accepted/],
      ['N > MAX_QUEUE', fp([MAX_QUEUE + 1, 1, 64, 64], []), {}, 'OIP_TOO_MANY_IMAGES', /input image: 9 images in one request, more than the 8 the server admits at once \(MAX_QUEUE\)/],
      ['BYTES N > MAX_QUEUE', JSON.stringify({ inputs: [{ name: 'dicom', shape: [MAX_QUEUE + 1], datatype: 'BYTES', data: [] }] }), {}, 'OIP_TOO_MANY_IMAGES', /input dicom: 9 images/],
      ['tta with FP32', fp([1, 1, 64, 64], ones(n), { parameters: { tta: true } }), {}, 'VALIDATION', /parameter tta applies to BYTES \(DICOM\) input only/],
    ];
    for (const [what, body, headers, code, detail] of cases) {
      const r = await post('/v2/models/tiny/infer', body, { 'content-type': 'application/json', ...headers });
      const text = await r.text();
      assert.equal(r.status, 400, `${what}: ${text}`);
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/, what);
      const e = JSON.parse(text) as { error: string; detail: string; code: string };
      assert.equal(e.error, e.detail, what);
      assert.equal(e.code, code, what);
      assert.match(e.error, detail, what);
    }
  });
});
