import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { DicomError } from '../dicom/errors.ts';
import { PreprocessError } from '../preprocess/errors.ts';
import { WorkerCrashedError } from './errors.ts';
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
