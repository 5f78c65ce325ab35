import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DicomError } from './dicom/errors.ts';
import { InferenceError, ModelNotFoundError, OverloadedError } from './engine/errors.ts';
import { CodedError, fromWireError, registerError, toWireError } from './errors.ts';
import { PreprocessError } from './preprocess/errors.ts';
import { RleError } from './rle/errors.ts';

const fallback = (w: { message: string }) => new InferenceError(w.message);
/** Through structured clone, as postMessage sends it. */
const cross = (e: unknown) => fromWireError(structuredClone(toWireError(e)), fallback);

test('a registered error comes back as its own class with code, status and every field', () => {
  const cases: CodedError[] = [
    new DicomError('TOO_LARGE', 'image is too large', { rows: 9, maxPixels: 4 }),
    new PreprocessError('INVALID_IMAGE', 'bad size'),
    new RleError('odd run count', { index: 3 }),
    new OverloadedError('queue full', 2.5),
    new ModelNotFoundError('unet', '9', 'available versions: 1'),
  ];
  for (const e of cases) {
    const back = cross(e);
    assert.equal(Object.getPrototypeOf(back), Object.getPrototypeOf(e), e.name);
    assert.ok(back instanceof Error);
    assert.equal(back.message, e.message);
    assert.deepEqual({ ...back }, { ...e });
    assert.equal((back as CodedError).status, e.status);
    assert.equal(Object.keys(back).includes('message'), false, 'message stays non-enumerable, as Error has it');
  }
  assert.equal((cross(new OverloadedError('x', 2.5)) as OverloadedError).retryAfterSeconds, 3);
  assert.deepEqual([new DicomError('NOT_DICOM', '').status, new DicomError('TOO_LARGE', '').status, new DicomError('TRUNCATED', '').status], [415, 413, 422]);
});

test('unregistered errors and non-errors go to the fallback; a class name is registered once', () => {
  class LocalError extends CodedError<'LOCAL'> {
    constructor() {
      super('LOCAL', 'local', 400);
    }
  }
  for (const e of [new TypeError('boom'), 'a string', new LocalError()]) {
    const back = cross(e);
    assert.ok(back instanceof InferenceError);
  }
  registerError(LocalError);
  assert.ok(cross(new LocalError()) instanceof LocalError);
  assert.throws(() => registerError(class LocalError extends CodedError {}), /two error classes named LocalError/);
});
