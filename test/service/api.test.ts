/**
 * Every route of the service through real HTTP (in-process server on an ephemeral port, real Engine
 * with small random-weight UNets): segmentation in each body form, stored results in each RLE
 * format, Dice, PNG renderings, models, OIP, probes, metrics; every class of bad input gets its 4xx
 * problem and the server keeps serving; no patient attribute reaches a log line or a response.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { newUid, writeDicom } from '../../core/dicom/write.ts';
import { masksEqual, type Mask } from '../../core/mask.ts';
import { dice } from '../../core/metrics/index.ts';
import { decodeMask, encodeMask, RLE_FORMATS, type RleFormat } from '../../core/rle/index.ts';
import { captureLogger, discMask, modelRepository, postDicom, postMultipart, SMALL_MODEL, startInProcess, testDicom, type InProcess } from './helpers.ts';

const SECRET_NAME = 'SYNTHETIC^SECRET';
const SECRET_ID = 'PID-SECRET-4711';

interface MaskBody {
  label: string;
  rle: { format: RleFormat; size: [number, number]; counts: string | number[] };
  area: number;
  bbox: number[] | null;
  empty: boolean;
}
interface ResultBody {
  id: string;
  model: { name: string; version: string; executionProvider: string };
  image: Record<string, unknown> & { rows: number; columns: number; transferSyntax: { uid: string; name: string } };
  masks: MaskBody[];
  dice?: Record<string, number>;
  timings: Record<string, number>;
  stored: boolean;
}

/** With the random-weight fixtures this threshold leaves a mask that is neither empty nor full. */
const PARTIAL = 0.7;
/** For the two-label fixture: 'left' empty, 'right' partial, so union and per-label renderings differ. */
const DUO_PARTIAL = 0.5;
const assertPartial = (m: Mask) => {
  const area = m.data.reduce((a, b) => a + b, 0);
  assert.ok(area > 0 && area < m.data.length, `mask area ${area} of ${m.data.length}: pick another PARTIAL threshold`);
};

const maskOf = (m: MaskBody): Mask => decodeMask(m.rle.counts, m.rle.format, m.rle.size[0], m.rle.size[1]);

describe('service API over HTTP', () => {
  let srv: InProcess;
  let repo: { remove: () => Promise<void> };
  const logs = captureLogger('trace');
  /** Every response body and header block seen, to scan for patient attributes at the end. */
  const seen: string[] = [];
  const call = async (input: string, init?: RequestInit) => {
    const r = await fetch(input, init);
    const buf = Buffer.from(await r.arrayBuffer());
    seen.push(JSON.stringify([...r.headers]), buf.toString('latin1'));
    return { status: r.status, headers: r.headers, buf, text: buf.toString('utf8'), json: () => JSON.parse(buf.toString('utf8')) };
  };
  const good = testDicom({ patientName: SECRET_NAME, patientId: SECRET_ID });

  /** After each bad request the next good one must still succeed. */
  const assertStillServing = async () => {
    const r = await postDicom(srv.url, good);
    assert.equal(r.status, 200, await r.text());
    await r.arrayBuffer().catch(() => undefined);
  };
  const assertProblem = async (p: Promise<Response>, status: number, code?: string | RegExp) => {
    const r = await p;
    const text = await r.text();
    seen.push(JSON.stringify([...r.headers]), text);
    assert.equal(r.status, status, text);
    assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
    const body = JSON.parse(text);
    for (const k of ['type', 'title', 'status', 'detail', 'instance']) assert.ok(k in body, `problem lacks ${k}: ${text}`);
    assert.equal(body.status, status);
    if (code instanceof RegExp) assert.match(body.code ?? '', code);
    else if (code) assert.equal(body.code, code, text);
    await assertStillServing();
    return body as { type: string; title: string; detail: string; code?: string };
  };

  before(async () => {
    const r = await modelRepository([SMALL_MODEL, { name: 'duo', version: '3', size: 64, depth: 2, baseChannels: 4, classes: 2, labels: ['left', 'right'], seed: 3 }]);
    repo = r;
    srv = await startInProcess(
      { MODEL_REPOSITORY: r.dir, DEFAULT_MODEL: 'tiny', BODY_LIMIT_BYTES: String(2 * 1024 * 1024), MAX_IMAGE_PIXELS: '200000', PREVIEW_MAX_SIDE: '64' },
      { logger: logs.logger },
    );
  });
  after(async () => {
    await srv?.close();
    await repo?.remove();
  });

  it('segments an application/dicom body and stores the result', async () => {
    const r = await call(`${srv.url}/segment`, { method: 'POST', headers: { 'content-type': 'application/dicom', 'x-request-id': 'req-abc.1' }, body: good });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-request-id'), 'req-abc.1');
    const body = r.json() as ResultBody;
    assert.equal(r.headers.get('content-location'), `/segmentations/${body.id}`);
    assert.deepEqual(body.model, { name: 'tiny', version: '1', executionProvider: 'cpu' });
    assert.equal(body.image.rows, 96);
    assert.equal(body.image.columns, 80);
    assert.equal(body.image.transferSyntax.uid, '1.2.840.10008.1.2.1');
    assert.equal(body.image.modality, 'DX');
    assert.equal(body.masks.length, 1);
    assert.equal(body.masks[0]!.label, 'pneumothorax');
    assert.equal(body.masks[0]!.rle.format, 'coco-compressed');
    assert.deepEqual(body.masks[0]!.rle.size, [96, 80]);
    const mask = maskOf(body.masks[0]!);
    assert.equal(body.masks[0]!.area, mask.data.reduce((a, b) => a + b, 0));
    assert.equal(body.stored, true);
    for (const k of ['decodeMs', 'preprocessMs', 'queueMs', 'inferenceMs', 'postprocessMs', 'totalMs']) assert.equal(typeof body.timings[k], 'number', k);

    const again = await call(`${srv.url}/segmentations/${body.id}`);
    assert.equal(again.status, 200);
    const stored = again.json() as ResultBody;
    assert.deepEqual({ ...stored, timings: null }, { ...body, timings: null });
  });

  it('returns the same mask in every RLE format, on POST and on GET', async () => {
    const first = (await (await postDicom(srv.url, good, `?rleFormat=kaggle&threshold=${PARTIAL}`)).json()) as ResultBody;
    assert.equal(first.masks[0]!.rle.format, 'kaggle');
    const reference = maskOf(first.masks[0]!);
    assertPartial(reference);
    for (const format of RLE_FORMATS) {
      const posted = (await (await postDicom(srv.url, good, `?rleFormat=${format}&threshold=${PARTIAL}`)).json()) as ResultBody;
      assert.equal(posted.masks[0]!.rle.format, format);
      assert.ok(masksEqual(maskOf(posted.masks[0]!), reference), `POST ${format}`);
      if (format === 'coco') assert.ok(Array.isArray(posted.masks[0]!.rle.counts));
      const got = await call(`${srv.url}/segmentations/${first.id}?rleFormat=${format}`);
      const body = got.json() as ResultBody;
      assert.equal(body.masks[0]!.rle.format, format);
      assert.ok(masksEqual(maskOf(body.masks[0]!), reference), `GET ${format}`);
    }
  });

  it('reports Dice that equals a recomputation from the returned mask and the sent truth', async () => {
    const truth = discMask(96, 80);
    for (const format of ['kaggle', 'coco-compressed', 'coco', 'siim'] as RleFormat[]) {
      const enc = encodeMask(truth, format);
      const counts = Array.isArray(enc) ? JSON.stringify(enc) : enc;
      const r = await call(`${srv.url}/segment?rleFormat=kaggle&threshold=${PARTIAL}`, { method: 'POST', body: multipartBody(good, { groundTruth: counts, groundTruthFormat: format }) });
      assert.equal(r.status, 200, r.text);
      const body = r.json() as ResultBody;
      const pred = maskOf(body.masks[0]!);
      assertPartial(pred);
      assert.ok(body.dice && typeof body.dice.pneumothorax === 'number', r.text);
      assert.equal(body.dice.pneumothorax, dice(pred, truth), format);
      // The stored copy keeps the score.
      const stored = (await call(`${srv.url}/segmentations/${body.id}`)).json() as ResultBody;
      assert.equal(stored.dice?.pneumothorax, body.dice.pneumothorax);
    }
  });

  it('takes one ground truth per label for a multi-label model', async () => {
    const truth = discMask(96, 80);
    const r = await call(`${srv.url}/segment?model=duo:3`, {
      method: 'POST',
      body: multipartBody(good, { 'groundTruth.right': encodeMask(truth, 'coco-compressed'), groundTruthFormat: 'coco-compressed' }),
    });
    assert.equal(r.status, 200, r.text);
    const body = r.json() as ResultBody;
    assert.deepEqual(body.model.name, 'duo');
    assert.deepEqual(body.masks.map((m) => m.label), ['left', 'right']);
    assert.deepEqual(Object.keys(body.dice ?? {}), ['right']);
    assert.equal(body.dice!.right, dice(maskOf(body.masks[1]!), truth));
    await assertProblem(
      fetch(`${srv.url}/segment?model=duo`, { method: 'POST', body: multipartBody(good, { 'groundTruth.middle': encodeMask(truth, 'kaggle'), groundTruthFormat: 'kaggle' }) }),
      400,
    );
  });

  it('renders mask.png at the image size and overlay.png from the preview kept for preview=true (and none without it)', async () => {
    const body = (await (await postDicom(srv.url, good, `?model=duo&threshold=${DUO_PARTIAL}&preview=true`)).json()) as ResultBody;
    const png = await call(`${srv.url}/segmentations/${body.id}/mask.png`);
    assert.equal(png.status, 200);
    assert.equal(png.headers.get('content-type'), 'image/png');
    const pngMeta = await sharp(png.buf).metadata();
    assert.deepEqual([pngMeta.width, pngMeta.height, pngMeta.channels, pngMeta.space], [80, 96, 1, 'b-w']);
    const data = await sharp(png.buf).extractChannel(0).raw().toBuffer();
    assertPartial(maskOf(body.masks[1]!));
    const union = body.masks.map(maskOf).reduce((u, m) => u.map((v, i) => v | m.data[i]!), new Uint8Array(96 * 80));
    for (let i = 0; i < union.length; i++) assert.equal(data[i], union[i] ? 255 : 0);

    const one = await call(`${srv.url}/segmentations/${body.id}/mask.png?label=right`);
    const right = await sharp(one.buf).extractChannel(0).raw().toBuffer();
    const rightMask = maskOf(body.masks[1]!);
    for (let i = 0; i < rightMask.data.length; i++) assert.equal(right[i], rightMask.data[i] ? 255 : 0);
    assert.equal((await call(`${srv.url}/segmentations/${body.id}/mask.png?label=nope`)).status, 400);

    const overlay = await call(`${srv.url}/segmentations/${body.id}/overlay.png`);
    assert.equal(overlay.status, 200);
    const meta = await sharp(overlay.buf).metadata();
    // The preview's longer side is PREVIEW_MAX_SIDE (64): 96x80 -> 64x53.
    assert.deepEqual([meta.width, meta.height, meta.channels], [53, 64, 3]);
    // The 'right' mask is tinted: some pixels are not grey.
    const rgb = await sharp(overlay.buf).raw().toBuffer();
    let tinted = 0;
    for (let i = 0; i < rgb.length; i += 3) if (rgb[i] !== rgb[i + 1] || rgb[i + 1] !== rgb[i + 2]) tinted++;
    assert.ok(tinted > 0 && tinted < 53 * 64, `tinted ${tinted}`);

    // Not asked for: no preview is made or kept, and overlay.png says how to get one.
    const plain = (await (await postDicom(srv.url, good, '?model=duo')).json()) as ResultBody;
    const none = await call(`${srv.url}/segmentations/${plain.id}/overlay.png`);
    assert.equal(none.status, 404);
    assert.match(JSON.parse(none.buf.toString()).detail, /preview=true/);
    assert.equal((await call(`${srv.url}/segmentations/${plain.id}/mask.png`)).status, 200, 'the result itself is there');
  });

  it('answers 404 problems for unknown results', async () => {
    await assertProblem(fetch(`${srv.url}/segmentations/6f1c1f52-0000-4000-8000-000000000000`), 404);
    await assertProblem(fetch(`${srv.url}/segmentations/not-an-id/mask.png`), 404);
    await assertProblem(fetch(`${srv.url}/segmentations/6f1c1f52-0000-4000-8000-000000000000/overlay.png`), 404);
    await assertProblem(fetch(`${srv.url}/no/such/route`), 404);
  });

  it('lists models, shows one, and speaks OIP metadata/readiness', async () => {
    const list = (await call(`${srv.url}/models`)).json();
    assert.equal(list.defaultModel, 'tiny');
    assert.deepEqual(list.models.map((m: { name: string }) => m.name).sort(), ['duo', 'tiny']);
    const tiny = (await call(`${srv.url}/models/tiny`)).json();
    assert.equal(tiny.version, '1');
    assert.deepEqual(tiny.versions, ['1']);
    assert.equal(tiny.ready, true);
    assert.equal(tiny.executionProvider, 'cpu');
    assert.deepEqual(tiny.input.shape, [-1, 1, 64, 64]);
    assert.deepEqual(tiny.labels, ['pneumothorax']);
    await assertProblem(fetch(`${srv.url}/models/nope`), 404, 'MODEL_NOT_FOUND');

    const meta = (await call(`${srv.url}/v2/models/duo`)).json();
    assert.deepEqual(meta, {
      name: 'duo',
      versions: ['3'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'image', datatype: 'FP32', shape: [-1, 1, 64, 64] }],
      // What POST .../infer produces (the mask's rows and cols are the image's: dynamic).
      outputs: [
        { name: 'mask', datatype: 'UINT8', shape: [-1, 2, -1, -1] },
        { name: 'labels', datatype: 'BYTES', shape: [2] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 2, 64, 64] },
      ],
    });
    assert.deepEqual((await call(`${srv.url}/v2/models/duo/versions/3`)).json().versions, ['3']);
    assert.deepEqual((await call(`${srv.url}/v2/models/duo/ready`)).json(), { name: 'duo', ready: true });
    assert.equal((await call(`${srv.url}/v2/models/duo/versions/3/ready`)).status, 200);
    const missing = await call(`${srv.url}/v2/models/nope`);
    assert.equal(missing.status, 404);
    assert.match(missing.json().error, /nope/);
    assert.deepEqual((await call(`${srv.url}/v2/health/live`)).json(), { live: true });
    assert.deepEqual((await call(`${srv.url}/v2/health/ready`)).json(), { ready: true });
    assert.equal((await call(`${srv.url}/v2`)).json().name, 'unet-seg');
  });

  it('answers the Kubernetes probes', async () => {
    assert.deepEqual((await call(`${srv.url}/livez`)).json(), { status: 'ok' });
    const ready = await call(`${srv.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(ready.json().status, 'ready');
    assert.equal((await call(`${srv.url}/startupz`)).status, 200);
  });

  it('exports Prometheus metrics labelled by route pattern', async () => {
    const m = await call(`${srv.url}/metrics`);
    assert.equal(m.status, 200);
    assert.match(m.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(m.text, /http_requests_total\{method="POST",route="\/segment",status="200"\} \d+/);
    assert.match(m.text, /http_requests_total\{method="GET",route="\/segmentations\/:id",status="200"\} \d+/);
    assert.doesNotMatch(m.text, /route="\/segmentations\/[0-9a-f]{8}-/);
    assert.match(m.text, /http_request_duration_seconds_bucket\{/);
    assert.match(m.text, /inference_queue_depth \d+/);
    assert.match(m.text, /inference_batch_size_count\{model="tiny"\} \d+/);
    assert.match(m.text, /inference_duration_seconds_count\{model="tiny",provider="cpu"\} \d+/);
    assert.match(m.text, /dicom_decode_duration_seconds_count \d+/);
    assert.match(m.text, /unet_model_execution_provider_info\{model="tiny",version="1",provider="cpu",requested="cpu"\} 1/);
    assert.match(m.text, /process_cpu_user_seconds_total/);
    assert.match(m.text, /segmentations_total\{model="tiny",outcome="ok"\} \d+/);
  });

  it('serves the OpenAPI document and Swagger UI', async () => {
    const spec = await call(`${srv.url}/openapi.yaml`);
    assert.equal(spec.status, 200);
    assert.match(spec.text, /^openapi: 3\.1\.0/);
    const docs = await call(`${srv.url}/docs`);
    assert.equal(docs.status, 200);
    assert.match(docs.text, /swagger/i);
  });

  describe('bad input gets a 4xx problem and the server keeps serving', () => {
    it('random bytes: 415 NOT_DICOM', async () => {
      const junk = new Uint8Array(4096);
      for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + 13) & 0xff;
      await assertProblem(postDicom(srv.url, junk), 415, 'NOT_DICOM');
    });
    it('truncated DICOM: 422', async () => {
      const b = await assertProblem(postDicom(srv.url, good.subarray(0, good.length - 3000)), 422);
      assert.ok(['TRUNCATED', 'DIMENSION_MISMATCH'].includes(b.code!), b.code);
    });
    it('DICOM without pixel data: 422 NO_PIXEL_DATA', async () => {
      const noPixels = writeDicom({ rows: 16, columns: 16, bitsAllocated: 16, sopInstanceUid: newUid(), omitPixelData: true, patientName: SECRET_NAME, patientId: SECRET_ID });
      await assertProblem(postDicom(srv.url, noPixels), 422, 'NO_PIXEL_DATA');
    });
    it('unsupported transfer syntax: 415 naming the UID and its name', async () => {
      const mpeg = writeDicom({
        rows: 16,
        columns: 16,
        bitsAllocated: 8,
        sopInstanceUid: newUid(),
        transferSyntaxUid: '1.2.840.10008.1.2.4.100',
        encapsulatedFrames: [new Uint8Array([0, 0, 1, 0xb3, 1, 2, 3, 4])],
      });
      const b = await assertProblem(postDicom(srv.url, mpeg), 415, 'UNSUPPORTED_TRANSFER_SYNTAX');
      assert.match(b.detail, /1\.2\.840\.10008\.1\.2\.4\.100/);
      assert.match(b.detail, /MPEG2/);
    });
    it('oversize body: 413 (raw and multipart)', async () => {
      const big = new Uint8Array(3 * 1024 * 1024);
      await assertProblem(postDicom(srv.url, big), 413, 'BODY_TOO_LARGE');
      await assertProblem(postMultipart(srv.url, big, {}), 413, 'FILE_TOO_LARGE');
    });
    it('image over MAX_IMAGE_PIXELS: 413 TOO_LARGE', async () => {
      await assertProblem(postDicom(srv.url, testDicom({ rows: 500, columns: 500 })), 413, 'TOO_LARGE');
    });
    it('bad query parameters: 400', async () => {
      await assertProblem(postDicom(srv.url, good, '?threshold=2'), 400, 'VALIDATION');
      await assertProblem(postDicom(srv.url, good, '?threshold=abc'), 400, 'VALIDATION');
      await assertProblem(postDicom(srv.url, good, '?rleFormat=png'), 400, 'VALIDATION');
      await assertProblem(postDicom(srv.url, good, '?minArea=-1'), 400, 'VALIDATION');
      const typo = await assertProblem(postDicom(srv.url, good, '?treshold=0.5'), 400, 'VALIDATION');
      // Names the parameter and lists the allowed ones (issue 14, item 3).
      assert.match(typo.detail, /unknown querystring parameter "treshold"; allowed: .*\bthreshold\b/);
      const fmt = await assertProblem(postDicom(srv.url, good, '?rleFormat=png'), 400, 'VALIDATION');
      assert.match(fmt.detail, /rleFormat.*kaggle.*siim.*coco/);
      await assertProblem(postDicom(srv.url, good, '?model=bad%20name'), 400, 'VALIDATION');
      await assertProblem(fetch(`${srv.url}/segmentations/x?rleFormat=zip`), 400, 'VALIDATION');
    });
    it('frame out of range: 422 FRAME_OUT_OF_RANGE', async () => {
      await assertProblem(postDicom(srv.url, good, '?frame=3'), 422, 'FRAME_OUT_OF_RANGE');
    });
    it('unknown model: 404', async () => {
      const unknown = await assertProblem(postDicom(srv.url, good, '?model=liver'), 404, 'MODEL_NOT_FOUND');
      // Lists the models there are (issue 14, item 3).
      assert.match(unknown.detail, /available models: .*\btiny\b/);
      await assertProblem(postDicom(srv.url, good, '?model=tiny:9'), 404, 'MODEL_NOT_FOUND');
    });
    it('bad ground-truth RLE: 400', async () => {
      await assertProblem(postMultipart(srv.url, good, { groundTruth: '1 2 3', groundTruthFormat: 'kaggle' }), 400, 'BAD_RLE');
      await assertProblem(postMultipart(srv.url, good, { groundTruth: '7600 500', groundTruthFormat: 'kaggle' }), 400, 'BAD_RLE');
      await assertProblem(postMultipart(srv.url, good, { groundTruth: 'not rle at all', groundTruthFormat: 'kaggle' }), 400, 'BAD_RLE');
      await assertProblem(postMultipart(srv.url, good, { groundTruth: '[1, x]', groundTruthFormat: 'coco' }), 400, 'BAD_RLE');
      await assertProblem(postMultipart(srv.url, good, { groundTruth: '1 2', groundTruthFormat: 'zip' }), 400);
    });
    it('bad multipart: 400', async () => {
      await assertProblem(postMultipart(srv.url, new Uint8Array(0), { other: 'x' }), 400);
      const noFile = new FormData();
      noFile.append('groundTruth', '1 2');
      // A missing file has a code of ours like every other problem (issue 14, item 3).
      await assertProblem(fetch(`${srv.url}/segment`, { method: 'POST', body: noFile }), 400, 'MISSING_FILE');
      await assertProblem(
        fetch(`${srv.url}/segment`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=XyZ' }, body: '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc' }),
        400,
      );
    });
    it('wrong content type or no body: 415', async () => {
      // Fastify's internal FST_ERR_CTP_INVALID_MEDIA_TYPE never leaks as our code.
      await assertProblem(fetch(`${srv.url}/segment`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
      await assertProblem(fetch(`${srv.url}/segment`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(10) }), 415);
      await assertProblem(fetch(`${srv.url}/segment`, { method: 'POST' }), 415);
    });
  });

  it('never puts patient name or ID in a log line or a response', async () => {
    // Requests above already sent these attributes (raw, multipart, no-pixel DICOM) and fetched every rendering.
    const r = await postMultipart(srv.url, good, { groundTruth: encodeMask(discMask(96, 80), 'kaggle'), groundTruthFormat: 'kaggle' });
    seen.push(await r.text());
    const logText = logs.text();
    assert.ok(logText.length > 1000, 'the logger captured the requests');
    assert.match(logText, /"msg":"segmented"/);
    for (const secret of [SECRET_NAME, SECRET_ID, 'SECRET']) {
      assert.ok(!logText.includes(secret), `log contains ${secret}`);
      assert.ok(!seen.some((s) => s.includes(secret)), `a response contains ${secret}`);
    }
  });
});

function multipartBody(dicom: Uint8Array, fields: Record<string, string>): FormData {
  const form = new FormData();
  form.append('file', new Blob([dicom], { type: 'application/dicom' }), 'image.dcm');
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return form;
}
