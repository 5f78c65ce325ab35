/**
 * A DICOM in shared memory (SegmentRequest.dicom viewing a SharedArrayBuffer) reaches the worker as it
 * is: the same masks as a copied request, and the caller's view still whole afterwards (not detached),
 * however many frames of it are in flight.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { brainSeries, multiFrameSc } from '../seg/testing.ts';
import { startEngine } from './testing/engine-fixtures.ts';

test('frames of one multi-frame file in shared memory: the same masks as copies, the caller keeps its view', async () => {
  const fx = await startEngine([{ name: 'unet', version: '1', size: 32, minArea: 0 }], { workers: 2 });
  try {
    const file = multiFrameSc(brainSeries(5, 6, 64), 9).bytes;
    const shared = new Uint8Array(new SharedArrayBuffer(file.length));
    shared.set(file);
    const frames = [0, 1, 2, 3, 4, 5];
    const fromShared = await Promise.all(frames.map((frame) => fx.engine.segment({ dicom: shared, frame })));
    const fromCopies = await Promise.all(frames.map((frame) => fx.engine.segment({ dicom: file, frame })));
    for (const f of frames) {
      assert.equal(fromShared[f]!.image.frame, f);
      assert.deepEqual(fromShared[f]!.masks.map((m) => m.mask.data), fromCopies[f]!.masks.map((m) => m.mask.data), `frame ${f}`);
    }
    assert.equal(shared.byteLength, file.length, 'not detached');
    assert.deepEqual(shared, file, 'unchanged');
  } finally {
    await fx.cleanup();
  }
});
