import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, type Clock } from './batcher.ts';
import { OverloadedError } from './errors.ts';

/** A manual clock: timers fire only when the test advances time. */
class FakeClock implements Clock {
  t = 0;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private ids = 0;
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimer(h: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== h);
  }
  pending(): number {
    return this.timers.length;
  }
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

const settle = () => new Promise((r) => setImmediate(r));

/** A batch runner the test completes by hand, recording what it was given. */
function manualRunner() {
  const calls: Array<{ key: string; items: number[]; done: (fail?: Error) => void }> = [];
  const run = (key: string, items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      calls.push({ key, items, done: (fail) => (fail ? reject(fail) : resolve(items.map((i) => `${key}/${i}`))) });
    });
  return { calls, run };
}

test('groups items of one key up to maxBatch and dispatches a full group at once', async () => {
  const clock = new FakeClock();
  const r = manualRunner();
  const b = new Batcher<number, string>({ maxBatch: 3, maxDelayMs: 50, maxQueue: 100, maxConcurrent: 2, run: r.run, clock });
  const out = [1, 2, 3, 4].map((i) => b.submit('m', i));
  await settle();
  assert.deepEqual(r.calls.map((c) => c.items), [[1, 2, 3]], 'the full group left without waiting');
  await clock.advance(49);
  assert.equal(r.calls.length, 1, 'the partial group waits for its delay');
  await clock.advance(1);
  assert.deepEqual(r.calls.map((c) => c.items), [[1, 2, 3], [4]]);
  r.calls.forEach((c) => c.done());
  assert.deepEqual(await Promise.all(out), ['m/1', 'm/2', 'm/3', 'm/4']);
  assert.equal(b.depth(), 0);
});

test('keys are never mixed in one batch; the longest-waiting group goes first', async () => {
  const clock = new FakeClock();
  const r = manualRunner();
  const b = new Batcher<number, string>({ maxBatch: 4, maxDelayMs: 10, maxQueue: 100, maxConcurrent: 1, run: r.run, clock });
  const p = [b.submit('a', 1)];
  await clock.advance(2);
  p.push(b.submit('b', 2), b.submit('a', 3), b.submit('b', 4));
  await clock.advance(10);
  assert.deepEqual(r.calls.map((c) => [c.key, c.items]), [['a', [1, 3]]]);
  r.calls[0]!.done();
  await settle();
  assert.deepEqual(r.calls.map((c) => [c.key, c.items]), [['a', [1, 3]], ['b', [2, 4]]], 'b (already expired) leaves as soon as the slot frees');
  r.calls[1]!.done();
  assert.deepEqual(await Promise.all(p), ['a/1', 'b/2', 'a/3', 'b/4']);
});

test('while every slot is busy items accumulate into bigger batches', async () => {
  const clock = new FakeClock();
  const r = manualRunner();
  const b = new Batcher<number, string>({ maxBatch: 8, maxDelayMs: 0, maxQueue: 100, maxConcurrent: 1, run: r.run, clock });
  const p = [b.submit('m', 0)];
  await settle();
  assert.deepEqual(r.calls.map((c) => c.items), [[0]], 'maxDelayMs 0 dispatches alone when a slot is free');
  for (let i = 1; i <= 10; i++) p.push(b.submit('m', i));
  await clock.advance(100);
  assert.equal(r.calls.length, 1, 'nothing else dispatches while the only slot is busy');
  r.calls[0]!.done();
  await settle();
  assert.deepEqual(r.calls[1]!.items, [1, 2, 3, 4, 5, 6, 7, 8]);
  r.calls[1]!.done();
  await settle();
  assert.deepEqual(r.calls[2]!.items, [9, 10]);
  r.calls[2]!.done();
  assert.equal((await Promise.all(p)).length, 11);
});

test('a per-key batch limit (fixed batch dimension) is respected', async () => {
  const clock = new FakeClock();
  const r = manualRunner();
  const b = new Batcher<number, string>({ maxBatch: (k) => (k === 'fixed1' ? 1 : 8), maxDelayMs: 5, maxQueue: 100, maxConcurrent: 4, run: r.run, clock });
  [1, 2, 3].forEach((i) => void b.submit('fixed1', i));
  await settle();
  assert.deepEqual(r.calls.map((c) => c.items), [[1], [2], [3]]);
});

test('the queue is bounded: reserve/submit beyond maxQueue throws OverloadedError with retryAfterSeconds', async () => {
  const clock = new FakeClock();
  const r = manualRunner();
  const depths: number[] = [];
  const b = new Batcher<number, string>({ maxBatch: 10, maxDelayMs: 1000, maxQueue: 3, maxConcurrent: 1, run: r.run, clock, onDepth: (d) => depths.push(d) });
  const res = b.reserve(2);
  void b.submit('m', 1, res);
  assert.equal(b.depth(), 2);
  assert.throws(() => b.reserve(2), (e: unknown) => {
    assert.ok(e instanceof OverloadedError);
    assert.ok(Number.isInteger(e.retryAfterSeconds) && e.retryAfterSeconds >= 1);
    return true;
  });
  void b.submit('m', 2);
  assert.throws(() => b.submit('m', 3), OverloadedError, 'the reservation still holds a slot');
  res.release();
  assert.equal(b.depth(), 2);
  void b.submit('m', 3);
  assert.equal(b.depth(), 3);
  assert.ok(depths.length > 0 && depths.at(-1) === 3);
  assert.equal(r.calls.length, 0);
  assert.doesNotThrow(() => b.reserve(0));
});

test('a request larger than the whole queue is admitted only into an empty queue', () => {
  const r = manualRunner();
  const b = new Batcher<number, string>({ maxBatch: 10, maxDelayMs: 1000, maxQueue: 1, maxConcurrent: 1, run: r.run, clock: new FakeClock() });
  const res = b.reserve(2);
  assert.throws(() => b.reserve(1), OverloadedError);
  res.release();
  assert.equal(b.depth(), 0);
});

test('an item of size 2 (a TTA pair) is never split across batches', async () => {
  const clock = new FakeClock();
  const r = manualRunner();
  const infos: number[] = [];
  const run = (key: string, items: number[], info: { images: number }) => {
    infos.push(info.images);
    return r.run(key, items);
  };
  const b = new Batcher<number, string>({ maxBatch: 3, maxDelayMs: 5, maxQueue: 100, maxConcurrent: 1, run, clock });
  void b.submit('m', 1, undefined, 2);
  void b.submit('m', 2, undefined, 2);
  assert.equal(b.depth(), 2, 'depth counts images; 2 + 2 > 3, so the first pair already left alone');
  void b.submit('m', 3, undefined, 1);
  await settle();
  assert.deepEqual(r.calls.map((c) => c.items), [[1]]);
  assert.equal(b.depth(), 3);
  r.calls[0]!.done();
  await settle();
  assert.deepEqual(r.calls.map((c) => c.items), [[1], [2, 3]]);
  assert.deepEqual(infos, [2, 3]);
});

test('eagerWhenNoneReserved: a partial group leaves at once unless admitted requests are still on their way', async () => {
  const clock = new FakeClock();
  const r = manualRunner();
  const b = new Batcher<number, string>({ maxBatch: 4, maxDelayMs: 50, maxQueue: 100, maxConcurrent: 2, run: r.run, clock, eagerWhenNoneReserved: true });
  void b.submit('m', 1);
  await settle();
  assert.deepEqual(r.calls.map((c) => c.items), [[1]], 'nothing else was admitted: no reason to wait');
  const res = b.reserve(2); // two requests still decoding
  void b.submit('m', 2, res);
  await settle();
  assert.equal(r.calls.length, 1, 'waits: another admitted request may join');
  void b.submit('m', 3, res);
  await settle();
  assert.deepEqual(r.calls.map((c) => c.items), [[1], [2, 3]], 'the last reserved item arrived: dispatch');
  r.calls.forEach((c) => c.done());
  await settle();
  const res2 = b.reserve(1);
  void b.submit('m', 4);
  await settle();
  assert.equal(r.calls.length, 2);
  res2.release(); // that request failed to decode: nothing is coming any more
  await settle();
  assert.deepEqual(r.calls.at(-1)!.items, [4]);
});

test('a failing batch rejects each of its items, and the batcher goes on', async () => {
  const clock = new FakeClock();
  const r = manualRunner();
  const b = new Batcher<number, string>({ maxBatch: 2, maxDelayMs: 0, maxQueue: 10, maxConcurrent: 1, run: r.run, clock });
  const a = b.submit('m', 1);
  await settle();
  r.calls[0]!.done(new Error('boom'));
  await assert.rejects(a, /boom/);
  const c = b.submit('m', 2);
  await settle();
  r.calls[1]!.done();
  assert.equal(await c, 'm/2');
});

test('flush() dispatches without waiting, and idle() resolves once everything ran', async () => {
  const clock = new FakeClock();
  const r = manualRunner();
  const b = new Batcher<number, string>({ maxBatch: 4, maxDelayMs: 10_000, maxQueue: 10, maxConcurrent: 1, run: r.run, clock });
  const p = [b.submit('m', 1), b.submit('m', 2)];
  await settle();
  assert.equal(r.calls.length, 0);
  let idle = false;
  void b.idle().then(() => (idle = true));
  b.flush();
  await settle();
  assert.deepEqual(r.calls[0]!.items, [1, 2]);
  assert.equal(idle, false);
  r.calls[0]!.done();
  await Promise.all(p);
  await settle();
  assert.equal(idle, true);
  assert.equal(clock.pending(), 0, 'no timer left behind');
});

test('works on the real clock: a lone item (below maxBatch) is still run once the delay timer fires', async () => {
  const r = manualRunner();
  const b = new Batcher<number, string>({ maxBatch: 4, maxDelayMs: 5, maxQueue: 10, maxConcurrent: 1, run: r.run });
  const p = b.submit('m', 7);
  while (r.calls.length === 0) await new Promise((res) => setTimeout(res, 2));
  r.calls[0]!.done();
  assert.equal(await p, 'm/7');
});
