/**
 * Dynamic batching. Items that share a key (model + input shape) are grouped: a group is dispatched as
 * soon as it holds its batch limit, or once its oldest item has waited `maxDelayMs`, whichever comes
 * first, and only while fewer than `maxConcurrent` batches are running (one per worker). While every
 * worker is busy, items keep accumulating, so batches grow under load and the workers stay busy.
 *
 * The queue is bounded: `reserve(n)` admits n items up front (a request reserves its slots before
 * decoding, so decode work is also bounded) or throws OverloadedError with a Retry-After estimate.
 */
import { OverloadedError } from './errors.ts';

export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface BatchInfo {
  key: string;
  /** Images in the batch (sum of item sizes). */
  images: number;
  /** When each item was enqueued (clock ms), in item order. */
  enqueuedAt: number[];
  /** When the batch was dispatched (clock ms). */
  dispatchedAt: number;
}

export interface BatcherOptions<T, R> {
  /** Largest batch for a key (a model with a fixed batch dimension caps it lower). */
  maxBatch: number | ((key: string) => number);
  maxDelayMs: number;
  /** Items admitted but not yet dispatched (reserved + queued) are bounded by this. */
  maxQueue: number;
  /** Batches allowed in flight at once (the number of workers). */
  maxConcurrent: number;
  /** Runs one batch; must resolve with one result per item, in order. */
  run: (key: string, items: T[], info: BatchInfo) => Promise<R[]>;
  clock?: Clock;
  /**
   * Dispatch a partial group at once when nothing else is reserved (no admitted request is still being
   * prepared, so waiting could not grow the batch). Off: a partial group always waits maxDelayMs.
   */
  eagerWhenNoneReserved?: boolean;
  /** Called whenever the depth (reserved + queued items) changes. */
  onDepth?: (depth: number) => void;
}

interface Entry<T, R> {
  item: T;
  /** Images this item puts into the batch (2 for a request with its flipped TTA twin). */
  size: number;
  enqueuedAt: number;
  resolve: (r: R) => void;
  reject: (e: Error) => void;
}

function groupSize(g: ReadonlyArray<{ size: number }>): number {
  let n = 0;
  for (const e of g) n += e.size;
  return n;
}

/** How many leading entries fit in `limit` images; at least one, so an oversized item still runs. */
function takeCount(g: ReadonlyArray<{ size: number }>, limit: number): number {
  let n = 0;
  let k = 0;
  for (const e of g) {
    if (k > 0 && n + e.size > limit) break;
    n += e.size;
    k++;
  }
  return k;
}

/** Slots admitted by `reserve`; each `submit` consumes one, `release` returns the rest. */
export class Reservation {
  remaining: number;
  constructor(
    private readonly owner: { unreserve(n: number): void },
    n: number,
  ) {
    this.remaining = n;
  }
  consume(n = 1): void {
    if (this.remaining < n) throw new Error(`reservation holds ${this.remaining} slot(s), ${n} requested`);
    this.remaining -= n;
  }
  /** Give back what was not submitted (e.g. decoding failed). Idempotent. */
  release(): void {
    if (this.remaining > 0) this.owner.unreserve(this.remaining);
    this.remaining = 0;
  }
}

export class Batcher<T, R> {
  private readonly groups = new Map<string, Entry<T, R>[]>();
  private readonly clock: Clock;
  private reserved = 0;
  private queued = 0;
  private running = 0;
  private timer: unknown;
  private timerAt = Infinity;
  private flushing = false;
  private idleWaiters: Array<() => void> = [];
  /** Exponentially weighted seconds per item, for Retry-After. */
  private secondsPerItem = 0;

  constructor(private readonly opts: BatcherOptions<T, R>) {
    this.clock = opts.clock ?? systemClock;
  }

  /** Reserved + queued items: what `maxQueue` bounds. */
  depth(): number {
    return this.reserved + this.queued;
  }

  inFlight(): number {
    return this.running;
  }

  private limit(key: string): number {
    const m = typeof this.opts.maxBatch === 'function' ? this.opts.maxBatch(key) : this.opts.maxBatch;
    return Math.max(1, Math.floor(m));
  }

  /** Seconds until the queue has likely moved enough to admit a retry. */
  retryAfterSeconds(): number {
    const perItem = this.secondsPerItem || 0.5;
    const est = (this.depth() * perItem) / Math.max(1, this.opts.maxConcurrent);
    return Math.min(60, Math.max(1, Math.ceil(est)));
  }

  /**
   * Admit `n` items or throw OverloadedError. A request larger than the whole queue is admitted only
   * into an empty queue (it could never fit otherwise).
   */
  reserve(n = 1): Reservation {
    const depth = this.depth();
    if (depth + n > this.opts.maxQueue && !(depth === 0 && n > this.opts.maxQueue)) {
      throw new OverloadedError(`inference queue is full (${depth}/${this.opts.maxQueue} images waiting)`, this.retryAfterSeconds());
    }
    this.reserved += n;
    this.opts.onDepth?.(this.depth());
    return new Reservation(this, n);
  }

  /** @internal used by Reservation */
  unreserve(n: number): void {
    this.reserved -= n;
    this.opts.onDepth?.(this.depth());
    // With nothing more reserved, an eager batcher may dispatch what waits.
    if (this.opts.eagerWhenNoneReserved) this.pump();
    this.notifyIdle();
  }

  /**
   * Queue one item of `size` images (kept together in one batch); resolves with its result once its
   * batch ran. Without a reservation, admits it here.
   */
  submit(key: string, item: T, reservation?: Reservation, size = 1): Promise<R> {
    if (reservation) {
      reservation.consume(size);
      this.reserved -= size;
    } else {
      this.reserve(size);
      this.reserved -= size;
    }
    this.queued += size;
    return new Promise<R>((resolve, reject) => {
      let g = this.groups.get(key);
      if (!g) this.groups.set(key, (g = []));
      g.push({ item, size, enqueuedAt: this.clock.now(), resolve, reject });
      this.opts.onDepth?.(this.depth());
      this.pump();
    });
  }

  /** From now on dispatch without waiting for batch delays (used while draining: nothing new arrives). */
  flush(): void {
    this.flushing = true;
    this.pump();
  }

  /** Resolves when nothing is reserved, queued or running. */
  idle(): Promise<void> {
    if (this.depth() === 0 && this.running === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private notifyIdle(): void {
    if (this.depth() === 0 && this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** The group to dispatch now: full, expired or flushing; among those, the one waiting longest. */
  private pickReady(now: number): string | undefined {
    let best: string | undefined;
    let bestAt = Infinity;
    const nothingComing = this.opts.eagerWhenNoneReserved === true && this.reserved === 0;
    for (const [key, g] of this.groups) {
      const head = g[0];
      if (!head) continue;
      const ready = this.flushing || nothingComing || groupSize(g) >= this.limit(key) || now - head.enqueuedAt >= this.opts.maxDelayMs;
      if (ready && head.enqueuedAt < bestAt) {
        best = key;
        bestAt = head.enqueuedAt;
      }
    }
    return best;
  }

  private pump(): void {
    const now = this.clock.now();
    while (this.running < this.opts.maxConcurrent) {
      const key = this.pickReady(now);
      if (key === undefined) break;
      const g = this.groups.get(key)!;
      const batch = g.splice(0, takeCount(g, this.limit(key)));
      if (g.length === 0) this.groups.delete(key);
      this.dispatch(key, batch, now);
    }
    this.armTimer(now);
  }

  private dispatch(key: string, batch: Entry<T, R>[], now: number): void {
    const images = groupSize(batch);
    this.queued -= images;
    this.running++;
    this.opts.onDepth?.(this.depth());
    const info: BatchInfo = { key, images, enqueuedAt: batch.map((e) => e.enqueuedAt), dispatchedAt: now };
    const started = this.clock.now();
    let out: Promise<R[]>;
    try {
      out = this.opts.run(key, batch.map((e) => e.item), info);
    } catch (e) {
      out = Promise.reject(e);
    }
    out
      .then((results) => {
        if (!Array.isArray(results) || results.length !== batch.length) {
          throw new Error(`batch runner returned ${Array.isArray(results) ? results.length : 'no'} results for ${batch.length} items`);
        }
        const s = (this.clock.now() - started) / 1000 / images;
        this.secondsPerItem = this.secondsPerItem ? 0.8 * this.secondsPerItem + 0.2 * s : s;
        batch.forEach((e, i) => e.resolve(results[i]!));
      })
      .catch((err: Error) => {
        for (const e of batch) e.reject(err);
      })
      .finally(() => {
        this.running--;
        this.pump();
        this.notifyIdle();
      });
  }

  /** Wake up when the oldest waiting group expires (only matters while a worker slot is free). */
  private armTimer(now: number): void {
    let next = Infinity;
    if (this.running < this.opts.maxConcurrent) {
      for (const g of this.groups.values()) if (g[0]) next = Math.min(next, g[0].enqueuedAt + this.opts.maxDelayMs);
    }
    if (next === this.timerAt) return;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.timerAt = next;
    if (next === Infinity) return;
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    }, Math.max(0, next - now));
  }
}
