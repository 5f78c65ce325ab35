/**
 * The pool's task deadline, cancellation, and "no worker can start": a worker stuck in synchronous
 * code is terminated and replaced, what it held fails with a typed error, and the pool serves on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { DeadlineExceededError, NotReadyError, WorkerCrashedError, WorkerRestartedError } from './errors.ts';
import { WorkerPool } from './worker-pool.ts';

const entry = new URL('./testing/pool-test-worker.ts', import.meta.url);
const logger = pino({ level: 'silent' });
// As the engine's init (model loads) does: a worker counts as started once it has answered.
const init = async (w: { call(m: { type: string }): Promise<unknown> }) => void (await w.call({ type: 'init' }));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a task stuck in synchronous code fails at its deadline; the worker is terminated and replaced; the task behind it did not run', async () => {
  const pool = await WorkerPool.start({ size: 1, entry, logger, init, respawnDelayMs: 10, depth: 2 });
  try {
    const t0 = performance.now();
    const stuck = pool.run({ type: 'spin', ms: 60_000 }, [], { timeoutMs: 300 });
    const behind = pool.run({ type: 'echo', value: 'behind' }, [], { timeoutMs: 300 });
    await assert.rejects(stuck, (e: unknown) => {
      assert.ok(e instanceof DeadlineExceededError, `got ${String(e)}`);
      assert.equal(e.code, 'DEADLINE_EXCEEDED');
      assert.equal(e.status, 503);
      assert.equal(e.stage, 'prepare');
      assert.equal(e.deadlineMs, 300);
      assert.match(e.message, /ran past its 300 ms deadline/);
      return true;
    });
    const waited = performance.now() - t0;
    assert.ok(waited < 3000, `failed by its deadline (${waited.toFixed(0)} ms)`);
    // It waited in the stuck worker's inbox: it never ran, and says so (retryable, 503).
    await assert.rejects(behind, (e: unknown) => {
      assert.ok(e instanceof WorkerRestartedError, `got ${String(e)}`);
      assert.ok(e instanceof WorkerCrashedError);
      assert.equal(e.code, 'WORKER_RESTARTED');
      assert.equal(e.status, 503);
      return true;
    });
    await until(() => pool.liveCount() === 1);
    assert.equal(pool.deadlineKillCount(), 1);
    assert.equal(await pool.run({ type: 'echo', value: 'after' }, [], { timeoutMs: 300 }), 'after', 'the replacement serves');
    assert.equal(pool.members().length, 1, 'back to one worker');
  } finally {
    await pool.close();
  }
});

test('the deadline counts from when the worker starts the task, not while it waits in the inbox behind another', async () => {
  const pool = await WorkerPool.start({ size: 1, entry, logger, init, respawnDelayMs: 10, depth: 2 });
  try {
    const a = pool.run({ type: 'spin', ms: 400, value: 'a' }, [], { timeoutMs: 750 });
    const b = pool.run({ type: 'spin', ms: 400, value: 'b' }, [], { timeoutMs: 750 });
    assert.deepEqual(await Promise.all([a, b]), ['a', 'b'], '400 + 400 ms of work, 750 ms each: both in time');
    assert.equal(pool.deadlineKillCount(), 0);
  } finally {
    await pool.close();
  }
});

test('a heavy task past its deadline names the inference stage; the other worker is unaffected', async () => {
  const isHeavy = (m: { type: string }) => (m as { heavy?: boolean }).heavy === true;
  const pool = await WorkerPool.start({ size: 2, entry, logger, init, respawnDelayMs: 10, depth: 2, isHeavy });
  try {
    const slow = pool.run({ type: 'sleep', ms: 600, value: 'ok' });
    const stuck = pool.run({ type: 'spin', ms: 60_000, heavy: true } as { type: string }, [], { timeoutMs: 200 });
    await assert.rejects(stuck, (e: unknown) => e instanceof DeadlineExceededError && e.stage === 'infer' && /inference task/.test(e.message));
    assert.equal(await slow, 'ok');
    await until(() => pool.liveCount() === 2);
  } finally {
    await pool.close();
  }
});

test('abort: a queued task is dropped without running; a running one is answered at once and its result discarded', async () => {
  const pool = await WorkerPool.start({ size: 1, entry, logger, init, depth: 1 });
  try {
    const running = new AbortController();
    const queued = new AbortController();
    const first = pool.run({ type: 'sleep', ms: 300, value: 1 }, [], { signal: running.signal });
    const second = pool.run({ type: 'echo', value: 2 }, [], { signal: queued.signal });
    assert.equal(pool.queued(), 1);
    queued.abort(new Error('client went away'));
    assert.equal(pool.queued(), 0, 'dropped from the queue');
    await assert.rejects(second, /client went away/);
    const t0 = performance.now();
    running.abort(new Error('gone too'));
    await assert.rejects(first, /gone too/);
    assert.ok(performance.now() - t0 < 200, 'answered at once, not when the worker finishes');
    assert.equal(await pool.run({ type: 'echo', value: 3 }), 3, 'the worker serves on');
    const already = new AbortController();
    already.abort(new Error('before'));
    await assert.rejects(pool.run({ type: 'echo', value: 4 }, [], { signal: already.signal }), /before/);
  } finally {
    await pool.close();
  }
});

test('no worker can start: queued and new tasks fail with NotReadyError (503 + retry hint), not a 500', async () => {
  let starts = 0;
  const pool = await WorkerPool.start({
    size: 1,
    entry,
    logger,
    respawnDelayMs: 50,
    init: async (w) => {
      if (starts++ > 0) throw new Error('model.onnx: protobuf parsing failed');
      await w.call({ type: 'init' });
    },
  });
  try {
    await assert.rejects(pool.run({ type: 'exit', code: 7 }), WorkerCrashedError);
    const queued = pool.run({ type: 'echo', value: 'x' });
    await assert.rejects(queued, (e: unknown) => {
      assert.ok(e instanceof NotReadyError, `got ${String(e)}`);
      assert.equal(e.status, 503);
      assert.ok(e.retryAfterSeconds >= 1);
      assert.match(e.message, /no inference worker is running.*protobuf parsing failed/);
      return true;
    });
    const t0 = performance.now();
    await assert.rejects(pool.run({ type: 'echo', value: 'y' }), NotReadyError);
    assert.ok(performance.now() - t0 < 100, 'refused at once while no worker runs');
    assert.equal(pool.liveCount(), 0);
  } finally {
    await pool.close();
  }
});

test('with a farewell, a heavy (native) run past its deadline is not cut short: a replacement starts at once, the old worker is retired after its run', async () => {
  // terminate() during an onnxruntime run aborts the whole process (Napi::Error into a torn-down
  // environment), so the engine configures a farewell and heavy tasks take this path.
  const pool = await WorkerPool.start({ size: 2, entry, logger, init, respawnDelayMs: 10, depth: 2, isHeavy: (m) => m.type === 'spin', farewell: { type: 'echo' }, retireGraceMs: 20_000 });
  try {
    let exits = 0;
    for (const w of pool.members()) w.worker.once('exit', () => exits++);
    const stuck = pool.run({ type: 'spin', ms: 6000 } as { type: string }, [], { timeoutMs: 200 });
    await assert.rejects(stuck, (e: unknown) => e instanceof DeadlineExceededError && e.stage === 'infer');
    // Spin long enough that the replacement is up before the old worker could have finished.
    await until(() => pool.liveCount() === 2, 10_000);
    assert.equal(exits, 0, 'the retiring worker is still finishing its run, not terminated');
    assert.equal(await pool.run({ type: 'echo', value: 5 }), 5, 'the pool serves meanwhile');
    await until(() => exits === 1, 20_000);
    assert.equal(pool.crashCount(), 0, 'a retirement is not a crash');
    assert.equal(pool.liveCount(), 2);
  } finally {
    await pool.close();
  }
});
