import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DicomError, type DicomErrorCode } from '../core/dicom/errors.ts';
import {
  DeadlineExceededError,
  InferenceError,
  InvalidRequestError,
  ModelInvalidError,
  ModelNotFoundError,
  NotReadyError,
  OverloadedError,
  RequestCancelledError,
  WorkerCrashedError,
  WorkerRestartedError,
} from '../core/engine/errors.ts';
import { PreprocessError } from '../core/preprocess/errors.ts';
import { RleError } from '../core/rle/index.ts';
import { redactPaths, toProblem } from './errors.ts';
import { StoreUnavailableError } from './store/types.ts';

describe('toProblem', () => {
  it('maps every DICOM error code to 413, 415 or 422 (never 5xx)', () => {
    const expected: Record<DicomErrorCode, number> = {
      NOT_DICOM: 415,
      UNSUPPORTED_TRANSFER_SYNTAX: 415,
      TOO_LARGE: 413,
      TRUNCATED: 422,
      NO_PIXEL_DATA: 422,
      UNSUPPORTED_PIXEL_FORMAT: 422,
      DIMENSION_MISMATCH: 422,
      FRAME_OUT_OF_RANGE: 422,
      CODEC_FAILED: 422,
    };
    for (const [code, status] of Object.entries(expected)) {
      const p = toProblem(new DicomError(code as DicomErrorCode, `x ${code}`));
      assert.equal(p.status, status, code);
      assert.equal(p.options.code, code);
    }
  });

  it('names the transfer syntax UID in the detail', () => {
    const p = toProblem(new DicomError('UNSUPPORTED_TRANSFER_SYNTAX', 'MPEG2 Main Profile / Main Level is not supported', { transferSyntaxUid: '1.2.840.10008.1.2.4.100' }));
    assert.match(p.detail, /1\.2\.840\.10008\.1\.2\.4\.100/);
    assert.match(p.detail, /MPEG2/);
  });

  it('maps engine errors', () => {
    assert.equal(toProblem(new ModelNotFoundError('liver')).status, 404);
    assert.equal(toProblem(new InvalidRequestError('threshold', 'bad')).status, 400);
    const o = toProblem(new OverloadedError('full', 3));
    assert.equal(o.status, 503);
    assert.equal(o.options.retryAfterSeconds, 3);
    assert.equal(toProblem(new NotReadyError('loading')).status, 503);
    assert.equal(toProblem(new WorkerCrashedError('boom')).status, 500);
    assert.equal(toProblem(new InferenceError('ort')).status, 500);
  });

  it('maps an image that cannot be preprocessed to 422, a bad spec or internal shape error to 500', () => {
    const img = toProblem(new PreprocessError('INVALID_IMAGE', 'image has 3 pixel values, expected 2x2=4'));
    assert.equal(img.status, 422);
    assert.equal(img.options.code, 'INVALID_IMAGE');
    assert.match(img.detail, /expected 2x2=4/);
    assert.equal(toProblem(new PreprocessError('INVALID_SPEC', 'bad spec')).status, 500);
    assert.equal(toProblem(new PreprocessError('INVALID_INPUT', 'bad probabilities')).status, 500);
  });

  it('maps RLE, store and Fastify errors', () => {
    assert.equal(toProblem(new RleError('odd')).status, 400);
    assert.equal(toProblem(new StoreUnavailableError('down')).status, 503);
    assert.equal(toProblem(Object.assign(new Error('too big'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 })).status, 413);
    assert.equal(toProblem(Object.assign(new Error('file too big'), { code: 'FST_REQ_FILE_TOO_LARGE', statusCode: 413 })).status, 413);
    assert.equal(toProblem(Object.assign(new Error('media'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 })).status, 415);
    assert.equal(toProblem(Object.assign(new Error('querystring/x'), { validation: [{}], statusCode: 400 })).status, 400);
    assert.equal(toProblem(new Error('Unexpected end of form')).status, 400);
    assert.equal(toProblem(Object.assign(new Error('teapot'), { statusCode: 418 })).status, 418);
  });

  it('maps the deadline, restart, invalid-model and cancellation errors with their statuses and retry hints', () => {
    const d = toProblem(new DeadlineExceededError('prepare', 1500, 'decode/preprocessing task ran past its 1500 ms deadline', 2));
    assert.equal(d.status, 503);
    assert.equal(d.options.code, 'DEADLINE_EXCEEDED');
    assert.equal(d.options.retryAfterSeconds, 2);
    assert.match(d.detail, /stage: prepare/);
    const r = toProblem(new WorkerRestartedError('worker 0 was replaced'));
    assert.equal(r.status, 503);
    assert.equal(r.options.code, 'WORKER_RESTARTED');
    assert.equal(r.options.retryAfterSeconds, 1);
    const n = toProblem(new NotReadyError('no worker', 7));
    assert.equal(n.options.retryAfterSeconds, 7);
    const i = toProblem(new ModelInvalidError('tiny:2', 'tiny:2: missing model.json in /srv/models/tiny/2'));
    assert.equal(i.status, 409);
    assert.equal(i.options.code, 'MODEL_INVALID');
    assert.match(i.detail, /tiny:2/);
    assert.doesNotMatch(i.detail, /\/srv/);
    assert.equal(toProblem(new RequestCancelledError()).status, 499);
    // Every Fastify code becomes one of ours.
    for (const code of ['FST_ERR_CTP_BODY_TOO_LARGE', 'FST_ERR_CTP_INVALID_MEDIA_TYPE', 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', 'FST_SOMETHING_NEW']) {
      const p = toProblem(Object.assign(new Error('x'), { code, statusCode: 400 }));
      assert.doesNotMatch(p.options.code ?? '', /^FST_/, code);
    }
  });

  it('redacts file paths to the model/version/file under the repository, and any other path to its file name', () => {
    assert.equal(redactPaths('tiny:2: missing model.json in /srv/models/tiny/2', '/srv/models'), 'tiny:2: missing model.json in tiny/2');
    assert.equal(redactPaths("cannot open '/etc/secret/dir/model.onnx'"), "cannot open 'model.onnx'");
    assert.equal(redactPaths('threshold 0.5 of 1/2 ok'), 'threshold 0.5 of 1/2 ok');
  });

  it('hides the message of unexpected errors', () => {
    const p = toProblem(new TypeError('cannot read properties of undefined (secret internals)'));
    assert.equal(p.status, 500);
    assert.doesNotMatch(p.detail, /secret/);
  });
});
