/**
 * Deadlines and cancellation end to end: a request whose decode never ends fails by its deadline with
 * DEADLINE_EXCEEDED, its worker is replaced, good requests keep being served; a caller's AbortSignal
 * ends a request at once. The slow decode is the worker's test hook (ENGINE_TEST_HOOKS=1, a preamble
 * starting `STALL:<ms>;`): a synchronous block like a stuck wasm codec, independent of decoder speed.
 */
process.env.ENGINE_TEST_HOOKS = '1';

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chestDicom } from '../../synth/index.ts';
import { DeadlineExceededError, RequestCancelledError } from './errors.ts';
import { startEngine } from './testing/engine-fixtures.ts';
import type { WorkerPool } from './worker-pool.ts';

const dicom = (await chestDicom(3, { size: 128, lesions: 1 })).bytes;

/** The same DICOM, with a preamble that makes the worker block for `ms` before decoding. */
function stalled(ms: number): Uint8Array {
  assert.equal(new TextDecoder().decode(dicom.subarray(128, 132)), 'DICM', 'the fixture has a preamble');
  const b = new Uint8Array(dicom);
  b.set(new TextEncoder().encode(`STALL:${ms};`), 0);
  return b;
}

const poolOf = (e: unknown) => (e as { pool: WorkerPool }).pool;

async function until(cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a decode stuck past taskTimeoutMs fails with DEADLINE_EXCEEDED, the worker is replaced, good requests are served meanwhile and after', async () => {
  const fx = await startEngine([{ name: 'unet', version: '1', size: 64 }], { workers: 2, taskTimeoutMs: 1500 });
  try {
    const pool = poolOf(fx.engine);
    const good = await fx.engine.segment({ dicom });
    const t0 = performance.now();
    const bad = fx.engine.segment({ dicom: stalled(600_000) });
    const during = fx.engine.segment({ dicom });
    await assert.rejects(bad, (e: unknown) => {
      assert.ok(e instanceof DeadlineExceededError, `got ${String(e)}`);
      assert.equal(e.code, 'DEADLINE_EXCEEDED');
      assert.equal(e.status, 503);
      assert.equal(e.stage, 'prepare');
      assert.ok(e.retryAfterSeconds >= 1);
      assert.match(e.message, /decode\/preprocessing task ran past its 1500 ms deadline/);
      return true;
    });
    const took = performance.now() - t0;
    assert.ok(took >= 1400 && took < 8000, `failed by its deadline (${took.toFixed(0)} ms)`);
    assert.deepEqual((await during).masks[0]!.mask.data, good.masks[0]!.mask.data, 'the other worker served meanwhile');
    await until(() => pool.liveCount() === 2);
    assert.equal(pool.members().length, 2, 'the worker count is back to normal');
    assert.equal(pool.deadlineKillCount(), 1);
    assert.ok(fx.lines.some((l) => l.level === 50 && /ran past its deadline/.test(l.msg)), 'logged');
    const after = await Promise.all([fx.engine.segment({ dicom }), fx.engine.segment({ dicom }), fx.engine.segment({ dicom })]);
    for (const r of after) assert.deepEqual(r.masks[0]!.mask.data, good.masks[0]!.mask.data);
    assert.equal(fx.engine.queueDepth(), 0);
    assert.equal(fx.engine.ready(), true);
  } finally {
    await fx.cleanup();
  }
});

test('requestTimeoutMs bounds the whole request, queueing included', async () => {
  const fx = await startEngine([{ name: 'unet', version: '1', size: 64 }], { workers: 1, taskTimeoutMs: 2500, requestTimeoutMs: 600 });
  try {
    const t0 = performance.now();
    // The stalled one holds the only worker; the good one behind it waits and runs out of time too.
    const bad = fx.engine.segment({ dicom: stalled(600_000) });
    const behind = fx.engine.segment({ dicom });
    for (const p of [bad, behind]) {
      await assert.rejects(p, (e: unknown) => e instanceof DeadlineExceededError && e.stage === 'request' && /600 ms deadline/.test(e.message));
    }
    assert.ok(performance.now() - t0 < 2400, 'answered at the request deadline, before the task deadline');
    // The stuck worker is still stopped at its task deadline and replaced; then all is well.
    await until(() => poolOf(fx.engine).deadlineKillCount() === 1 && poolOf(fx.engine).liveCount() === 1);
    assert.equal((await fx.engine.segment({ dicom })).masks.length, 1);
  } finally {
    await fx.cleanup();
  }
});

test('an AbortSignal ends the request at once with CANCELLED; an already aborted one is refused before any work', async () => {
  const fx = await startEngine([{ name: 'unet', version: '1', size: 64 }], { workers: 1, taskTimeoutMs: 1500 });
  try {
    const running = new AbortController();
    const queued = new AbortController();
    const a = fx.engine.segment({ dicom: stalled(600_000), signal: running.signal });
    const b = fx.engine.segment({ dicom, signal: queued.signal });
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    queued.abort();
    running.abort();
    for (const p of [a, b]) {
      await assert.rejects(p, (e: unknown) => {
        assert.ok(e instanceof RequestCancelledError, `got ${String(e)}`);
        assert.equal(e.code, 'CANCELLED');
        assert.equal(e.status, 499);
        return true;
      });
    }
    assert.ok(performance.now() - t0 < 500, 'at once');
    const gone = new AbortController();
    gone.abort();
    await assert.rejects(fx.engine.segment({ dicom, signal: gone.signal }), RequestCancelledError);
    // The abandoned stall still ends at its task deadline; the engine serves on.
    assert.equal((await fx.engine.segment({ dicom })).masks.length, 1);
    assert.equal(fx.engine.queueDepth(), 0);
  } finally {
    await fx.cleanup();
  }
});

test('with decode workers (prepareWorkers): the same masks; a decode stuck past its deadline replaces a decode worker, never an inference worker', async () => {
  const plain = await startEngine([{ name: 'unet', version: '1', size: 64 }], { workers: 1, prepareWorkers: 0 });
  const split = await startEngine([{ name: 'unet', version: '1', size: 64 }], { workers: 1, prepareWorkers: 1, taskTimeoutMs: 5000 });
  try {
    const want = await plain.engine.segment({ dicom });
    const got = await split.engine.segment({ dicom });
    assert.deepEqual(got.masks.map((m) => m.mask.data), want.masks.map((m) => m.mask.data));
    const inference = poolOf(split.engine);
    const decode = (split.engine as unknown as { preparePool: WorkerPool }).preparePool;
    assert.equal(decode.members().length, 1);
    await assert.rejects(split.engine.segment({ dicom: stalled(600_000) }), (e: unknown) => e instanceof DeadlineExceededError && e.stage === 'prepare' && /in decode worker \d/.test(e.message));
    await until(() => decode.liveCount() === 1);
    assert.equal(decode.deadlineKillCount(), 1, 'the decode worker was replaced');
    assert.equal(inference.deadlineKillCount(), 0, 'the inference worker (and its sessions) untouched');
    assert.deepEqual((await split.engine.segment({ dicom })).masks[0]!.mask.data, want.masks[0]!.mask.data, 'serves after');
  } finally {
    await Promise.all([plain.cleanup(), split.cleanup()]);
  }
});
