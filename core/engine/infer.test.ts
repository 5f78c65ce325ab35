/**
 * Engine.infer, the raw-tensor entry point: the processor's own preprocess of a DICOM run through it
 * gives segment()'s masks and probabilities; tensor and DICOM requests of one model version share
 * batches; the caller's tensor moves to the worker when it may; and admission, the request deadline
 * and cancellation behave as for segment(). A request held in its decode (the worker's STALL test
 * hook, ENGINE_TEST_HOOKS=1) keeps its queue reservation, so the batcher waits maxDelayMs for it: that
 * is how a tensor request is made to wait here, independent of decoder or model speed.
 */
process.env.ENGINE_TEST_HOOKS = '1';

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { chestDicom } from '../../synth/index.ts';
import { decodeDicom } from '../dicom/decode.ts';
import { ModelManifestSchema } from '../manifest.ts';
import { SegmentationProcessor } from '../segmentation/processor.ts';
import { DeadlineExceededError, InvalidRequestError, OverloadedError, RequestCancelledError } from './errors.ts';
import { startEngine, type EngineFixture } from './testing/engine-fixtures.ts';

const MODEL = { name: 'unet', version: '1', size: 64, classes: 2, labels: ['a', 'b'], seed: 5 };
// A 64x64 image: the model's size, so segment()'s masks are at model resolution like infer()'s.
const dicom = (await chestDicom(3, { size: 64, lesions: 1 })).bytes;

function stalled(ms: number): Uint8Array {
  const b = new Uint8Array(dicom);
  b.set(new TextEncoder().encode(`STALL:${ms};`), 0);
  return b;
}

async function processorOf(fx: EngineFixture): Promise<SegmentationProcessor> {
  const m = ModelManifestSchema.parse(JSON.parse(await readFile(join(fx.dir, MODEL.name, MODEL.version, 'model.json'), 'utf8')));
  return SegmentationProcessor.fromManifest(m);
}

test('infer() on the processor\'s preprocess of a DICOM gives segment()\'s masks and probabilities; N images answer in order', async () => {
  const fx = await startEngine([MODEL], { workers: 1 });
  try {
    const tensor = (await processorOf(fx)).preprocess(await decodeDicom(dicom))[0]!;
    const seg = await fx.engine.segment({ dicom, probabilities: true });
    assert.equal(seg.probabilities?.length, 2 * 64 * 64);
    const one = await fx.engine.infer({ tensor: tensor.slice(), outputs: { masks: true, probabilities: true } });
    assert.deepEqual(one.outputShape, [2, 64, 64]);
    assert.deepEqual(one.model, seg.model);
    assert.equal(one.images.length, 1);
    assert.deepEqual(one.images[0]!.masks!.map((m) => [m.label, m.mask.rows, m.mask.cols, m.area]), seg.masks.map((m) => [m.label, 64, 64, m.area]));
    assert.deepEqual(one.images[0]!.masks!.map((m) => m.mask.data), seg.masks.map((m) => m.mask.data));
    assert.deepEqual(one.images[0]!.probabilities, seg.probabilities);
    assert.ok(seg.masks.some((m) => m.area > 0), 'not all empty');
    // Without a segment() result to compare against: probabilities only, then three images at once.
    const probsOnly = await fx.engine.infer({ tensor: tensor.slice(), outputs: { probabilities: true } });
    assert.equal(probsOnly.images[0]!.masks, undefined);
    const zeros = new Float32Array(tensor.length);
    const three = new Float32Array(3 * tensor.length);
    three.set(tensor, 0);
    three.set(zeros, tensor.length);
    three.set(tensor, 2 * tensor.length);
    const r = await fx.engine.infer({ tensor: three, outputs: { masks: true }, rules: { threshold: 0.5 } });
    assert.equal(r.images.length, 3);
    assert.deepEqual(r.images[2]!.masks!.map((m) => m.mask.data), r.images[0]!.masks!.map((m) => m.mask.data));
    assert.equal(three.length, 3 * tensor.length, 'a tensor of several images is copied, not taken');
    assert.ok(r.timings.totalMs >= r.timings.inferenceMs && r.timings.decodeMs === 0 && r.timings.preprocessMs === 0);
    assert.equal(fx.engine.queueDepth(), 0);
  } finally {
    await fx.cleanup();
  }
});

test('one image is moved to the worker with transferTensor (the caller\'s array is detached), copied without it', async () => {
  const fx = await startEngine([MODEL], { workers: 1 });
  try {
    const tensor = (await processorOf(fx)).preprocess(await decodeDicom(dicom))[0]!;
    const kept = tensor.slice();
    await fx.engine.infer({ tensor: kept, outputs: { masks: true } });
    assert.equal(kept.length, tensor.length, 'copied');
    const moved = tensor.slice();
    await fx.engine.infer({ tensor: moved, outputs: { masks: true }, transferTensor: true });
    assert.equal(moved.length, 0, 'transferred');
  } finally {
    await fx.cleanup();
  }
});

test('tensor and DICOM requests of the same model version share a batch', async () => {
  // A long batch delay: nothing dispatches early while a request is still being prepared.
  const fx = await startEngine([MODEL], { workers: 1, maxBatch: 4, maxDelayMs: 2000 });
  try {
    const tensor = (await processorOf(fx)).preprocess(await decodeDicom(dicom))[0]!;
    const seg = fx.engine.segment({ dicom });
    const inf = fx.engine.infer({ tensor, outputs: { masks: true } });
    const [s, i] = await Promise.all([seg, inf]);
    assert.deepEqual(fx.batches, [2], 'one batch of two images');
    assert.deepEqual(i.images[0]!.masks!.map((m) => m.mask.data), s.masks.map((m) => m.mask.data));
  } finally {
    await fx.cleanup();
  }
});

test('bad tensor requests are InvalidRequestError naming the field, before admission; N is bounded by maxQueue', async () => {
  const fx = await startEngine([MODEL], { workers: 1, maxQueue: 4 });
  try {
    const plane = 64 * 64;
    const cases: Array<[Parameters<typeof fx.engine.infer>[0], string, RegExp]> = [
      [{ tensor: new Float32Array(plane + 1), outputs: { masks: true } }, 'tensor', /4097 values, not a whole number \(>= 1\) of 1x64x64 images/],
      [{ tensor: new Float32Array(0), outputs: { masks: true } }, 'tensor', /0 values/],
      [{ tensor: [1, 2] as unknown as Float32Array, outputs: { masks: true } }, 'tensor', /Float32Array/],
      [{ tensor: new Float32Array(5 * plane), outputs: { masks: true } }, 'tensor', /5 images, more than the engine admits at once \(maxQueue 4\)/],
      [{ tensor: new Float32Array(plane), outputs: {} }, 'outputs', /masks, probabilities or both/],
      [{ tensor: new Float32Array(plane), outputs: { masks: true }, rules: { threshold: 2 } }, 'threshold', /threshold must be a number in \(0, 1\)/],
    ];
    for (const [req, field, message] of cases) {
      await assert.rejects(fx.engine.infer(req), (e: unknown) => e instanceof InvalidRequestError && e.field === field && message.test(e.message));
    }
    // Four images fill the queue: admitted. Beside another request they are not (503 OVERLOADED, as segment()).
    assert.equal((await fx.engine.infer({ tensor: new Float32Array(4 * plane), outputs: { masks: true } })).images.length, 4);
    const held = fx.engine.segment({ dicom: stalled(800) });
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(fx.engine.infer({ tensor: new Float32Array(4 * plane), outputs: { masks: true } }), OverloadedError);
    await held;
    assert.equal(fx.engine.queueDepth(), 0);
    await assert.rejects(fx.engine.infer({ model: 'nope', tensor: new Float32Array(plane), outputs: { masks: true } }), /nope/);
  } finally {
    await fx.cleanup();
  }
});

test('requestTimeoutMs bounds a tensor request waiting in the queue (DEADLINE_EXCEEDED, stage request)', async () => {
  const fx = await startEngine([MODEL], { workers: 1, maxDelayMs: 5000, requestTimeoutMs: 600, taskTimeoutMs: 2500 });
  try {
    const held = fx.engine.segment({ dicom: stalled(1500) }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = performance.now();
    await assert.rejects(fx.engine.infer({ tensor: new Float32Array(64 * 64), outputs: { masks: true } }), (e: unknown) => {
      assert.ok(e instanceof DeadlineExceededError, `got ${String(e)}`);
      assert.equal(e.stage, 'request');
      assert.equal(e.status, 503);
      assert.match(e.message, /600 ms deadline/);
      return true;
    });
    const took = performance.now() - t0;
    assert.ok(took > 450 && took < 2000, `at the request deadline (${took.toFixed(0)} ms)`);
    assert.ok((await held) instanceof DeadlineExceededError, 'the held request ran out of time too');
    // Once the stall is over (the worker is the decode worker too: cpu's default), all is well.
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await fx.engine.infer({ tensor: new Float32Array(64 * 64), outputs: { masks: true } })).images.length, 1, 'serves after');
    assert.equal(fx.engine.queueDepth(), 0);
  } finally {
    await fx.cleanup();
  }
});

test('an AbortSignal ends a queued tensor request at once (CANCELLED); an aborted one is refused before any work; its images are left out of the batch', async () => {
  const fx = await startEngine([MODEL], { workers: 1, maxDelayMs: 3000 });
  try {
    const gone = new AbortController();
    gone.abort();
    await assert.rejects(fx.engine.infer({ tensor: new Float32Array(64 * 64), outputs: { masks: true }, signal: gone.signal }), RequestCancelledError);
    assert.equal(fx.engine.queueDepth(), 0);

    const held = fx.engine.segment({ dicom: stalled(700) });
    await new Promise((r) => setTimeout(r, 50));
    const ctl = new AbortController();
    const queued = fx.engine.infer({ tensor: new Float32Array(3 * 64 * 64), outputs: { masks: true, probabilities: true }, signal: ctl.signal });
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    ctl.abort();
    await assert.rejects(queued, (e: unknown) => e instanceof RequestCancelledError && e.code === 'CANCELLED' && e.status === 499);
    assert.ok(performance.now() - t0 < 300, 'at once');
    const r = await held;
    assert.equal(r.masks.length, 2);
    // The held request's batch ran without the cancelled images.
    assert.deepEqual(fx.batches, [1]);
    assert.equal(fx.engine.queueDepth(), 0);
  } finally {
    await fx.cleanup();
  }
});

test('segment() with masks: false returns the same probabilities and no masks (no post-processing); masks: false alone is refused', async () => {
  const fx = await startEngine([MODEL], { workers: 1 });
  try {
    const both = await fx.engine.segment({ dicom, probabilities: true });
    const only = await fx.engine.segment({ dicom, probabilities: true, masks: false });
    assert.deepEqual(only.probabilities, both.probabilities);
    assert.deepEqual(only.masks, []);
    assert.ok(both.masks.length === 2);
    await assert.rejects(fx.engine.segment({ dicom, masks: false }), (e: unknown) => e instanceof InvalidRequestError && e.field === 'masks');
  } finally {
    await fx.cleanup();
  }
});
