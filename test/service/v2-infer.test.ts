/**
 * Open Inference Protocol (KServe v2) inference, POST /v2/models/{name}[/versions/{v}]/infer.
 * No KServe/Triton client is installable here (tritonclient is on PyPI only, which this project
 * cannot reach; neither npm nor Debian packages one), so the requests are the protocol's published
 * shapes: the JSON form of inference_rest.md's example and the binary form of Triton's
 * binary_tensor_data extension example (Content-Type application/octet-stream,
 * Inference-Header-Content-Length, binary_data_size, binary_data), plus what tritonclient's HTTP
 * client sends (no outputs, binary_data_output: true, no Content-Type). Responses are decoded the way
 * the spec says (and tritonclient's InferResult does): JSON up to the header length, then each
 * binary output's binary_data_size bytes in output order. Masks must equal POST /segment's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeCocoString } from '../../core/rle/index.ts';
import { modelRepository, postDicom, SMALL_MODEL, startInProcess, testDicom, type InProcess } from './helpers.ts';

const DUO = { name: 'duo', version: '3', size: 64, depth: 2, baseChannels: 4, classes: 2, labels: ['left', 'right'], seed: 3 };

type Tensor = { name: string; shape: number[]; datatype: string; parameters?: Record<string, unknown>; data?: unknown[] };
type InferResponse = { model_name: string; model_version: string; id?: string; parameters?: Record<string, unknown>; outputs: Tensor[] };

/** A binary request body: JSON header + the tensors' bytes; returns body and header length. */
function binaryBody(header: unknown, ...chunks: Uint8Array[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, ...chunks]), headerLength: json.length };
}

/** BYTES elements in binary form: 4-byte little-endian length + bytes, per element. */
function bytesElements(...items: Uint8Array[]): Buffer {
  return Buffer.concat(
    items.flatMap((b) => {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      return [len, Buffer.from(b)];
    }),
  );
}

/** Decodes a response as the spec says: JSON part, then binary outputs in order; returns each output's values. */
async function decode(r: Response): Promise<{ head: InferResponse; values: Map<string, Uint8Array | unknown[] | string[]> }> {
  const buf = Buffer.from(await r.arrayBuffer());
  const hl = r.headers.get('inference-header-content-length');
  const headLen = hl === null ? buf.length : Number(hl);
  const head = JSON.parse(buf.subarray(0, headLen).toString('utf8')) as InferResponse;
  const values = new Map<string, Uint8Array | unknown[] | string[]>();
  let o = headLen;
  for (const t of head.outputs) {
    const size = t.parameters?.binary_data_size as number | undefined;
    if (size === undefined) {
      values.set(t.name, t.data!);
      continue;
    }
    const bytes = buf.subarray(o, o + size);
    o += size;
    if (t.datatype === 'BYTES') {
      const items: string[] = [];
      for (let k = 0; k < bytes.length; ) {
        const n = bytes.readUInt32LE(k);
        items.push(bytes.subarray(k + 4, k + 4 + n).toString('utf8'));
        k += 4 + n;
      }
      values.set(t.name, items);
    } else values.set(t.name, new Uint8Array(bytes));
  }
  assert.equal(o, buf.length, 'binary part fully accounted for by binary_data_size');
  return { head, values };
}

describe('OIP (KServe v2) inference', () => {
  let repo: { dir: string; remove: () => Promise<void> };
  let srv: InProcess;
  const dicom = testDicom();
  let segmentMasks: Map<string, Uint8Array>;

  before(async () => {
    repo = await modelRepository([SMALL_MODEL, DUO]);
    srv = await startInProcess({ MODEL_REPOSITORY: repo.dir, DEFAULT_MODEL: 'tiny' });
    // The reference: POST /segment's masks for the same image (COCO RLE is column-major).
    const seg = (await (await postDicom(srv.url, dicom, '?model=duo')).json()) as { masks: Array<{ label: string; rle: { counts: string; size: [number, number] } }> };
    segmentMasks = new Map(seg.masks.map((m) => [m.label, decodeCocoString(m.rle.counts, m.rle.size[0], m.rle.size[1]).data]));
  });
  after(async () => {
    await srv?.close();
    await repo?.remove();
  });

  const infer = (path: string, body: string | Uint8Array, headers: Record<string, string> = {}) => fetch(`${srv.url}${path}`, { method: 'POST', body, headers });
  const json = (x: unknown) => ({ body: JSON.stringify(x), headers: { 'content-type': 'application/json' } });

  it('advertises binary_tensor_data in GET /v2', async () => {
    const meta = (await (await fetch(`${srv.url}/v2`)).json()) as { name: string; version: string; extensions: string[] };
    assert.ok(meta.extensions.includes('binary_tensor_data'));
    assert.match(meta.version, /^\d+\.\d+\.\d+/);
  });

  it('JSON form: a base64 DICOM in, mask and labels out, equal to POST /segment', async () => {
    const req = json({ id: '42', inputs: [{ name: 'dicom', shape: [1], datatype: 'BYTES', data: [Buffer.from(dicom).toString('base64')] }] });
    const r = await infer('/v2/models/duo/infer', req.body, req.headers);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(r.headers.get('inference-header-content-length'), null);
    const { head, values } = await decode(r);
    assert.equal(head.id, '42');
    assert.equal(head.model_name, 'duo');
    assert.equal(head.model_version, '3');
    assert.deepEqual(head.outputs.map((o) => [o.name, o.datatype, o.shape]), [
      ['mask', 'UINT8', [1, 2, 96, 80]],
      ['labels', 'BYTES', [2]],
    ]);
    assert.deepEqual(values.get('labels'), ['left', 'right']);
    const mask = Uint8Array.from(values.get('mask') as number[]);
    // Row-major N,C,rows,cols; the same pixels as /segment's masks (which are not all empty).
    const plane = 96 * 80;
    assert.deepEqual(mask.subarray(0, plane), segmentMasks.get('left'));
    assert.deepEqual(mask.subarray(plane, 2 * plane), segmentMasks.get('right'));
    assert.ok([...segmentMasks.values()].some((m) => m.some((v) => v === 1)), 'reference masks are not all empty');
  });

  it("binary form, as the binary_tensor_data extension's example: octet-stream, header length, binary_data_size / binary_data", async () => {
    const data = bytesElements(dicom);
    const { body, headerLength } = binaryBody(
      {
        model_name: 'duo',
        inputs: [{ name: 'dicom', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: data.length } }],
        outputs: [{ name: 'mask:right', parameters: { binary_data: true } }, { name: 'labels' }],
      },
      data,
    );
    const r = await infer('/v2/models/duo/versions/3/infer', body, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^application\/octet-stream/);
    const total = Number(r.headers.get('content-length'));
    const { head, values } = await decode(r);
    const out = head.outputs[0]!;
    assert.deepEqual([out.name, out.datatype, out.shape, out.parameters?.binary_data_size], ['mask:right', 'UINT8', [1, 1, 96, 80], 96 * 80]);
    assert.equal(out.data, undefined);
    assert.equal(total, Number(r.headers.get('inference-header-content-length')) + 96 * 80);
    assert.deepEqual(values.get('mask:right'), segmentMasks.get('right'));
    assert.deepEqual(values.get('labels'), ['left', 'right']);
  });

  it("as tritonclient's HTTP client sends it: no Content-Type, no outputs, binary_data_output, a batch of two", async () => {
    const data = bytesElements(dicom, dicom);
    const { body, headerLength } = binaryBody(
      { inputs: [{ name: 'dicom', shape: [2, 1], datatype: 'BYTES', parameters: { binary_data_size: data.length } }], parameters: { binary_data_output: true, priority: 0 } },
      data,
    );
    const r = await infer('/v2/models/tiny/infer', new Uint8Array(body), { 'inference-header-content-length': String(headerLength) });
    assert.equal(r.status, 200, await r.clone().text());
    const { head, values } = await decode(r);
    assert.deepEqual(head.outputs.map((o) => [o.name, o.shape]), [
      ['mask', [2, 1, 96, 80]],
      ['labels', [1]],
    ]);
    const mask = values.get('mask') as Uint8Array;
    assert.deepEqual(mask.subarray(0, 96 * 80), mask.subarray(96 * 80));
    assert.deepEqual(values.get('labels'), ['pneumothorax']);
  });

  it('reads threshold / min_area / tta / frame parameters', async () => {
    const req = (parameters: Record<string, unknown>) =>
      json({ inputs: [{ name: 'dicom', shape: [1], datatype: 'BYTES', data: [Buffer.from(dicom).toString('base64')] }], outputs: [{ name: 'mask' }], parameters });
    const lo = await decode(await infer('/v2/models/tiny/infer', req({ threshold: 0.01 }).body, req({}).headers));
    const hi = await decode(await infer('/v2/models/tiny/infer', req({ threshold: 0.99 }).body, req({}).headers));
    const area = (v: unknown) => (v as number[]).reduce((a, b) => a + b, 0);
    assert.ok(area(lo.values.get('mask')) > area(hi.values.get('mask')));
    const big = await decode(await infer('/v2/models/tiny/infer', req({ min_area: 1_000_000, tta: true, frame: 0 }).body, req({}).headers));
    assert.equal(area(big.values.get('mask')), 0);
    const bad = await infer('/v2/models/tiny/infer', req({ threshold: 7 }).body, req({}).headers);
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /threshold/);
  });

  it("answers the protocol's own example request with an error object (its model and inputs are not ours)", async () => {
    // inference_rest.md's example, verbatim: a model "mymodel" with UINT32 and BOOL inputs.
    const example = {
      id: '42',
      inputs: [
        { name: 'input0', shape: [2, 2], datatype: 'UINT32', data: [1, 2, 3, 4] },
        { name: 'input1', shape: [3], datatype: 'BOOL', data: [true] },
      ],
      outputs: [{ name: 'output0' }],
    };
    const r1 = await infer('/v2/models/mymodel/infer', JSON.stringify(example), { 'content-type': 'application/json' });
    assert.equal(r1.status, 404);
    const e1 = (await r1.json()) as { error: string; code: string };
    assert.match(e1.error, /mymodel/);
    const r2 = await infer('/v2/models/tiny/infer', JSON.stringify(example), { 'content-type': 'application/json' });
    assert.equal(r2.status, 400);
    assert.match(((await r2.json()) as { error: string }).error, /inputs/);
  });

  it('errors: every one has the protocol error member and a code', async () => {
    const b64 = Buffer.from(dicom).toString('base64');
    const cases: Array<[string, string | Uint8Array, Record<string, string>, number, RegExp]> = [
      ['/v2/models/tiny/infer', '{not json', { 'content-type': 'application/json' }, 400, /not valid JSON/],
      ['/v2/models/tiny/infer', JSON.stringify({ inputs: [{ name: 'd', shape: [1], datatype: 'BYTES', data: [b64] }], outputs: [{ name: 'nope' }] }), {}, 400, /unknown output "nope".*"mask"/],
      ['/v2/models/tiny/infer', JSON.stringify({ inputs: [{ name: 'd', shape: [1], datatype: 'BYTES', data: ['***'] }] }), {}, 400, /not base64/],
      ['/v2/models/tiny/infer', JSON.stringify({ inputs: [{ name: 'd', shape: [2], datatype: 'BYTES', data: [b64] }] }), {}, 400, /2 elements, data 1/],
      ['/v2/models/tiny/infer', JSON.stringify({ inputs: [{ name: 'd', shape: [1], datatype: 'INT8', data: [1] }] }), {}, 400, /datatype INT8/],
      ['/v2/models/tiny/infer', JSON.stringify({ inputs: [{ name: 'd', shape: [1], datatype: 'BYTES', data: [Buffer.from('hello').toString('base64')] }] }), {}, 415, /DICM/],
      ['/v2/models/tiny/infer', JSON.stringify({ inputs: [{ name: 'image', shape: [1, 1, 32, 32], datatype: 'FP32', data: [] }] }), {}, 400, /does not match the model's \[-1, 1, 64, 64\]/],
      ['/v2/models/tiny/infer', JSON.stringify({ inputs: [{ name: 'image', shape: [1, 1, 64, 64], datatype: 'FP32', data: [] }] }), {}, 400, /input image: shape \[1, 1, 64, 64\] holds 4096 values, data 0/],
      ['/v2/models/tiny/infer', 'xx', { 'inference-header-content-length': '99' }, 400, /exceeds/],
      ['/v2/models/tiny/infer', '{"inputs":[]}', { 'inference-header-content-length': '0' }, 400, /raw binary/],
      ['/v2/models/tiny/versions/9/infer', JSON.stringify({ inputs: [{ name: 'd', shape: [1], datatype: 'BYTES', data: [b64] }] }), {}, 404, /tiny:9/],
    ];
    for (const [path, body, headers, status, detail] of cases) {
      const r = await infer(path, body, headers);
      const text = await r.text();
      assert.equal(r.status, status, `${path} ${String(body).slice(0, 80)}: ${text}`);
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
      const e = JSON.parse(text) as { error: string; detail: string; code: string };
      assert.equal(e.error, e.detail);
      assert.match(e.error, detail);
      assert.ok(e.code, `code in ${text}`);
    }
  });
});
