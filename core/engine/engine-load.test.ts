/**
 * The engine under load: dynamic batching, the bounded queue, drain, worker crashes and the main
 * thread's responsiveness while every worker is saturated.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { chestDicom } from '../../synth/index.ts';
import { NotReadyError, OverloadedError, WorkerCrashedError } from './errors.ts';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelManifest } from '../manifest.ts';
import { startEngine } from './testing/engine-fixtures.ts';
import { assertMatchesReference, assertPartialAsymmetric, partialThreshold, referenceMask, referenceProbabilities, releaseReferenceSessions } from './testing/reference.ts';
import type { WorkerPool } from './worker-pool.ts';

const dicom = (await chestDicom(3, { size: 256, lesions: 1 })).bytes;

// Workers read it at start: the EXIT hook below ends one deliberately.
process.env.ENGINE_TEST_HOOKS = '1';

test('a burst of different images is grouped into batches of up to maxBatch, and every request gets its own answer', async () => {
  const fx = await startEngine([{ name: 'unet', version: '1', size: 64 }], { workers: 1, maxBatch: 4, maxDelayMs: 200 });
  try {
    // Five different images (different content and sizes), two requests each, interleaved so one
    // batch holds different images; every other request asks for TTA.
    const sizes = [256, 64, 160, 96, 200];
    const images = await Promise.all(sizes.map(async (size, i) => (await chestDicom(100 + i, { size, lesions: (i % 3) as 0 | 1 | 2 })).bytes));
    const dir = join(fx.dir, 'unet', '1');
    const manifest = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as ModelManifest;
    const requests = Array.from({ length: 10 }, (_, k) => ({ image: k % 5, tta: k % 2 === 1 }));
    const refs = await Promise.all(requests.map((r) => referenceProbabilities(join(dir, 'model.onnx'), manifest, images[r.image]!, { tta: r.tta })));
    const threshold = partialThreshold(refs);
    refs.forEach((ref, k) => assertPartialAsymmetric(referenceMask(ref, threshold).data, ref.rows, ref.cols, `reference ${k}`));
    fx.batches.length = 0;
    const rs = await Promise.all(requests.map((r) => fx.engine.segment({ dicom: images[r.image]!, tta: r.tta, threshold })));
    assert.equal(rs.length, 10);
    assert.equal(fx.batches.reduce((a, b) => a + b, 0), 15, 'every image ran exactly once (5 requests with TTA count twice)');
    assert.ok(fx.batches.length < requests.length, `requests were batched together (fewer batches than requests): ${fx.batches}`);
    assert.ok(Math.max(...fx.batches) <= 4, `no batch above maxBatch: ${fx.batches}`);
    rs.forEach((r, k) => assertMatchesReference(r.masks[0]!.mask, refs[k]!, threshold, `request ${k} (image ${requests[k]!.image}, tta ${requests[k]!.tta})`));
    assert.equal(fx.engine.queueDepth(), 0);
    assert.equal(fx.depths.at(-1), 0, 'the observer saw the queue empty again');
  } finally {
    await fx.cleanup();
    await releaseReferenceSessions();
  }
});

test('beyond maxQueue requests are rejected at once with OverloadedError and a Retry-After', async () => {
  const fx = await startEngine([{ name: 'unet', version: '1', size: 64 }], { workers: 1, maxBatch: 2, maxQueue: 3, maxDelayMs: 5 });
  try {
    const settled = await Promise.allSettled(Array.from({ length: 12 }, () => fx.engine.segment({ dicom })));
    const rejected = settled.filter((s) => s.status === 'rejected').map((s) => (s as PromiseRejectedResult).reason as Error);
    const ok = settled.filter((s) => s.status === 'fulfilled');
    assert.ok(ok.length >= 3, `${ok.length} admitted`);
    assert.ok(rejected.length > 0, 'some were refused');
    for (const e of rejected) {
      assert.ok(e instanceof OverloadedError, `got ${e}`);
      assert.ok(Number.isInteger(e.retryAfterSeconds) && e.retryAfterSeconds >= 1);
    }
    // TTA needs two slots: refused as well while the queue is full, admitted when it is empty.
    assert.ok((await fx.engine.segment({ dicom, tta: true })).masks.length === 1);
  } finally {
    await fx.cleanup();
  }
});

test('drain() finishes everything queued and in flight, then refuses new work', async () => {
  const fx = await startEngine([{ name: 'unet', version: '1', size: 64 }], { workers: 1, maxBatch: 2, maxDelayMs: 1000 });
  try {
    const pending = Array.from({ length: 5 }, () => fx.engine.segment({ dicom }));
    // A long batch delay: without drain flushing the queue these would wait a second each.
    const t0 = performance.now();
    await fx.engine.drain();
    const results = await Promise.allSettled(pending);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    assert.ok(performance.now() - t0 < 5000);
    assert.equal(fx.engine.ready(), false);
    await assert.rejects(fx.engine.segment({ dicom }), NotReadyError);
  } finally {
    await fx.cleanup();
  }
});

test('a worker that dies fails its requests with WorkerCrashedError (no hang), is replaced, and the engine serves on', async () => {
  // The worker dies by its own hand (the worker's EXIT test hook) while other requests are in flight:
  // terminate() from outside during an onnxruntime run would abort the whole test process instead.
  const fx = await startEngine([{ name: 'unet', version: '1', size: 256, depth: 4, baseChannels: 16 }], { workers: 2, maxBatch: 2, maxDelayMs: 1 });
  try {
    const pool = (fx.engine as unknown as { pool: WorkerPool }).pool;
    const fatal = dicom.slice();
    fatal.set(new TextEncoder().encode('EXIT:70;'), 0);
    const burst = Array.from({ length: 12 }, (_, i) => fx.engine.segment({ dicom: i === 5 ? fatal : dicom }));
    const settled = await Promise.allSettled(burst);
    const failed = settled.filter((s) => s.status === 'rejected').map((s) => (s as PromiseRejectedResult).reason as Error);
    assert.ok(failed.length >= 1, 'the request(s) on the dead worker failed');
    for (const e of failed) {
      assert.ok(e instanceof WorkerCrashedError, `got ${e}`);
      assert.match(e.message, /inference worker \d+ exited/);
    }
    assert.ok(settled.some((s) => s.status === 'fulfilled'), 'the rest were served');
    for (let i = 0; i < 200 && pool.liveCount() < 2; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(pool.liveCount(), 2, 'replaced');
    assert.ok(fx.lines.some((l) => l.level === 50 && /inference worker died/.test(l.msg)));
    const after = await Promise.all([fx.engine.segment({ dicom }), fx.engine.segment({ dicom }), fx.engine.segment({ dicom })]);
    assert.equal(after.length, 3, 'the replacement holds the model and serves');
    assert.equal(fx.engine.queueDepth(), 0);
  } finally {
    await fx.cleanup();
  }
});

test('the event loop stays responsive while every worker is saturated', async () => {
  // 256x256 UNet: one batch of 4 takes hundreds of ms on this CPU; on the main thread it would stall the loop that long.
  const fx = await startEngine([{ name: 'unet', version: '1', size: 256, depth: 4, baseChannels: 16, upsample: 'bilinear' }], { workers: 2, maxBatch: 4, maxDelayMs: 10 });
  try {
    const big = (await chestDicom(5, { size: 512, lesions: 1 })).bytes;
    await fx.engine.segment({ dicom: big });
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const elu0 = performance.eventLoopUtilization();
    const rs = await Promise.all(Array.from({ length: 16 }, () => fx.engine.segment({ dicom: big })));
    const elu = performance.eventLoopUtilization(elu0);
    h.disable();
    const maxDelayMs = h.max / 1e6;
    const longestBatchMs = Math.max(...rs.map((r) => r.timings.inferenceMs));
    const detail = `max event-loop delay ${maxDelayMs.toFixed(1)} ms, loop busy ${(elu.utilization * 100).toFixed(1)} % (${elu.active.toFixed(0)} ms), longest batch ${longestBatchMs.toFixed(0)} ms`;
    // Behaviour checks with generous bounds: inference on the main thread would stall the loop for a
    // whole batch and keep it busy nearly all the time. On a heavily shared machine the OS alone can
    // delay the loop, and batches slow down with it, hence the bound also scales with the batch time.
    assert.ok(maxDelayMs < Math.max(100, longestBatchMs / 2), detail);
    assert.ok(elu.utilization < 0.5, detail);
    assert.ok(rs.every((r) => r.masks[0]!.mask.rows === 512));
  } finally {
    await fx.cleanup();
  }
});
