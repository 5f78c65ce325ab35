import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { DicomError } from '../dicom/errors.ts';
import { PreprocessError } from '../preprocess/errors.ts';
import { RleError } from '../rle/errors.ts';
import { InferenceError, ModelInvalidError, WorkerCrashedError } from './errors.ts';
import { WorkerPool } from './worker-pool.ts';

const entry = new URL('./testing/pool-test-worker.ts', import.meta.url);
const logger = pino({ level: 'silent' });

test('runs tasks on workers, transfers buffers, and rebuilds typed errors', async () => {
  let inits = 0;
  const pool = await WorkerPool.start({
    size: 2,
    entry,
    logger,
    init: async (w) => {
      assert.equal(await w.call({ type: 'init' }), 'ready');
      inits++;
    },
  });
  try {
    assert.equal(inits, 2);
    assert.equal(pool.liveCount(), 2);
    assert.deepEqual(await pool.run({ type: 'echo', value: { a: 1 } }), { a: 1 });

    const data = new Float32Array([1, 2, 3]);
    const out = await pool.run<Float32Array>({ type: 'double', data } as { type: string }, [data.buffer]);
    assert.equal(data.byteLength, 0, 'the input buffer was transferred, not copied');
    assert.deepEqual(Array.from(out), [2, 4, 6]);

    await assert.rejects(pool.run({ type: 'dicom-error' }), (e: unknown) => {
      assert.ok(e instanceof DicomError);
      assert.equal(e.code, 'TRUNCATED');
      assert.deepEqual(e.details, { offset: 12 });
      return true;
    });
    // An image that decoded but cannot be preprocessed stays an image problem, not an InferenceError.
    await assert.rejects(pool.run({ type: 'preprocess-error' }), (e: unknown) => {
      assert.ok(e instanceof PreprocessError, `got ${String(e)}`);
      assert.equal(e.code, 'INVALID_IMAGE');
      assert.match(e.message, /expected 2x2=4/);
      return true;
    });
    // Any registered core error keeps its class, code, status and fields (RleError was once a 500).
    await assert.rejects(pool.run({ type: 'rle-error' }), (e: unknown) => {
      assert.ok(e instanceof RleError, `got ${String(e)}`);
      assert.equal(e.code, 'INVALID_RLE');
      assert.equal(e.status, 400);
      assert.equal(e.name, 'RleError');
      assert.deepEqual(e.details, { format: 'siim', index: 3 });
      assert.match(e.message, /run 3 extends past the mask/);
      assert.match(String(e.stack), /pool-test-worker/, 'the stack is the thrower\'s');
      return true;
    });
    await assert.rejects(pool.run({ type: 'model-invalid' }), (e: unknown) => {
      assert.ok(e instanceof ModelInvalidError);
      assert.equal(e.code, 'MODEL_INVALID');
      assert.equal(e.model, 'unet:2');
      return true;
    });
    // Unregistered errors are the server's fault.
    await assert.rejects(pool.run({ type: 'type-error' }), (e: unknown) => {
      assert.ok(e instanceof InferenceError);
      assert.equal(e.code, 'INFERENCE_FAILED');
      assert.match(e.message, /x is not a function/);
      return true;
    });
  } finally {
    await pool.close();
  }
});

test('queues tasks beyond the pool size and uses every worker', async () => {
  const pool = await WorkerPool.start({ size: 2, entry, logger });
  try {
    const tasks = Array.from({ length: 5 }, (_, i) => pool.run({ type: 'sleep', ms: 30, value: i }));
    // Two run at once, three wait in the pool queue.
    assert.equal(pool.idleCount(), 0);
    assert.equal(pool.queued(), 3);
    assert.deepEqual(await Promise.all(tasks), [0, 1, 2, 3, 4]);
    assert.equal(pool.queued(), 0);
  } finally {
    await pool.close();
  }
});

test('a worker that dies fails its in-flight task with WorkerCrashedError and is replaced', async () => {
  let inits = 0;
  const pool = await WorkerPool.start({
    size: 2,
    entry,
    logger,
    respawnDelayMs: 10,
    init: async (w) => {
      await w.call({ type: 'init' });
      inits++;
    },
  });
  try {
    const slow = pool.run({ type: 'sleep', ms: 200, value: 'survivor' });
    await assert.rejects(pool.run({ type: 'exit', code: 3 }), (e: unknown) => {
      assert.ok(e instanceof WorkerCrashedError);
      assert.match(e.message, /exited \(code 3\)/);
      return true;
    });
    assert.equal(await slow, 'survivor', 'the other worker is unaffected');
    // The replacement starts (runs init again) and serves.
    for (let i = 0; i < 100 && pool.liveCount() < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(pool.liveCount(), 2);
    assert.equal(inits, 3);
    assert.equal(pool.crashCount(), 1);
    assert.deepEqual(await Promise.all([pool.run({ type: 'echo', value: 1 }), pool.run({ type: 'echo', value: 2 })]), [1, 2]);
  } finally {
    await pool.close();
  }
});

test('a terminated worker rejects everything it held, then close() rejects the queue', async () => {
  const pool = await WorkerPool.start({ size: 1, entry, logger, respawnDelayMs: 10 });
  const inflight = pool.run({ type: 'sleep', ms: 1000 });
  await new Promise((r) => setTimeout(r, 20));
  await pool.members()[0]!.worker.terminate();
  await assert.rejects(inflight, WorkerCrashedError);
  await pool.close();
  await assert.rejects(pool.run({ type: 'echo', value: 1 }), WorkerCrashedError);
});

test('depth > 1: a worker holds its next task while it runs one; nothing waits behind a heavy task', async () => {
  const isHeavy = (m: { type: string }) => (m as { heavy?: boolean }).heavy === true;
  const pool = await WorkerPool.start({ size: 2, entry, logger, depth: 2, isHeavy });
  try {
    const light = Array.from({ length: 5 }, (_, i) => pool.run({ type: 'sleep', ms: 30, value: i }));
    // Two per worker are sent at once (one running, one waiting in its inbox); one waits in the pool.
    assert.equal(pool.queued(), 1);
    assert.deepEqual(
      pool.members().map((w) => w.inflight),
      [2, 2],
    );
    assert.deepEqual(await Promise.all(light), [0, 1, 2, 3, 4]);

    const heavyA = pool.run({ type: 'sleep', ms: 80, value: 'A', heavy: true } as { type: string });
    const heavyB = pool.run({ type: 'sleep', ms: 80, value: 'B', heavy: true } as { type: string });
    const heavyC = pool.run({ type: 'sleep', ms: 10, value: 'C', heavy: true } as { type: string });
    const after = pool.run({ type: 'echo', value: 'D' });
    // A and B take one worker each; neither C nor D (light) is queued behind them: both wait in the
    // pool for whichever worker frees first.
    assert.deepEqual(
      pool.members().map((w) => [w.inflight, w.heavyInflight]),
      [
        [1, 1],
        [1, 1],
      ],
    );
    assert.equal(pool.queued(), 2, 'C and D wait in the pool for a worker without a heavy task');
    assert.deepEqual(await Promise.all([heavyA, heavyB, heavyC, after]), ['A', 'B', 'C', 'D']);
  } finally {
    await pool.close();
  }
});

test('depth > 1: a worker that dies fails the task it ran and the one waiting in its inbox', async () => {
  const pool = await WorkerPool.start({ size: 1, entry, logger, respawnDelayMs: 10, depth: 2 });
  try {
    const running = pool.run({ type: 'sleep', ms: 1000 });
    const waiting = pool.run({ type: 'echo', value: 'next' });
    const queued = pool.run({ type: 'echo', value: 'later' });
    assert.equal(pool.queued(), 1);
    await new Promise((r) => setTimeout(r, 20));
    await pool.members()[0]!.worker.terminate();
    await assert.rejects(running, WorkerCrashedError);
    await assert.rejects(waiting, WorkerCrashedError);
    // The task still in the pool's queue was never sent: the replacement runs it.
    assert.equal(await queued, 'later');
  } finally {
    await pool.close();
  }
});
