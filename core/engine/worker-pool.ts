/**
 * A small pool of worker_threads. `run` gives a task to a worker with room in its inbox (FIFO queue
 * otherwise); `broadcast` sends a message to every worker (model loads). A worker that dies rejects its
 * in-flight calls with WorkerCrashedError at once and is replaced; the replacement runs `init` (which
 * reloads the models) before it takes tasks.
 *
 * `depth` > 1 hands a worker its next task(s) while it still runs one: a worker answers in order, so
 * it starts the next at once instead of idling for a round trip through this thread, which on a
 * loaded machine waits for a core. Nothing is queued behind a task marked `heavy` (a batch inference):
 * it waits in the pool queue for whichever worker frees first, so heavy tasks spread over the workers
 * and a decode never waits out a batch it could have dodged. The price: when a worker dies, the tasks
 * waiting in its inbox fail with it (their buffers were transferred to it).
 */
import { Worker, type TransferListItem } from 'node:worker_threads';
import type { Logger } from 'pino';
import { DeadlineExceededError, NotReadyError, WorkerCrashedError, WorkerRestartedError, type DeadlineStage } from './errors.ts';
import { fromWireError, type RpcResponse } from './worker-rpc.ts';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  kind: string;
  /** Deadline of this call once the worker starts it (it answers in order: when it is the oldest pending). */
  timeoutMs?: number;
  timer?: NodeJS.Timeout;
}

/** Per-task options of `run`. */
export interface RunOptions {
  /**
   * Longest the task may run once its worker starts it. Past it the task fails with
   * DeadlineExceededError and the worker is terminated and replaced (synchronous JS or wasm cannot be
   * interrupted otherwise); tasks waiting in that worker's inbox fail with WorkerRestartedError.
   */
  timeoutMs?: number;
  /** The stage named in the DeadlineExceededError (default 'prepare' for light tasks, 'infer' for heavy ones). */
  stage?: DeadlineStage;
  /**
   * Abort: a task still in the pool queue is dropped (never sent); a task already in a worker is
   * answered at once with the signal's reason and its result, when it comes, discarded.
   */
  signal?: AbortSignal;
}

interface QueuedTask {
  msg: { type: string };
  transfer: TransferListItem[];
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  opts: RunOptions;
}

const reasonOf = (signal: AbortSignal): Error => (signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason ?? 'aborted')));

/** Node flags the worker must not inherit: test-runner/watch flags, and tsx's --import (replaced below). */
function workerExecArgv(dropTsx: boolean): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--test') || a.startsWith('--watch')) continue;
    if (dropTsx && (a === '--import' || a === '--require' || a === '--loader') && /tsx/.test(argv[i + 1] ?? '')) {
      i++;
      continue;
    }
    if (dropTsx && /^--(import|require|loader)=.*tsx/.test(a)) continue;
    out.push(a);
  }
  return out;
}

/**
 * Start a worker on `entry`. Compiled JS (dist/) loads directly. A `.ts` entry (running under tsx)
 * does not: `--import tsx` in execArgv does not make Node 20 accept a .ts worker entry, so a tiny
 * bootstrap registers tsx's loader in the worker first and then imports the entry.
 */
export function spawnWorker(entry: URL, workerData: unknown, name: string): Worker {
  if (entry.pathname.endsWith('.ts')) {
    const tsxApi = import.meta.resolve('tsx/esm/api');
    const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
    return new Worker(boot, { eval: true, workerData, execArgv: workerExecArgv(true), name });
  }
  return new Worker(entry, { workerData, execArgv: workerExecArgv(false), name });
}

/** How a deadline message names the task of each stage. */
const STAGE_TASK: Record<Exclude<DeadlineStage, 'request'>, string> = { prepare: 'decode/preprocessing', infer: 'inference', postprocess: 'post-processing' };

export class PoolWorker {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();
  /** `run` tasks sent to this worker and not yet answered, and how many of them are heavy. */
  inflight = 0;
  heavyInflight = 0;
  /** false until init finished; only available workers take `run` tasks. */
  available = false;
  exited = false;
  /** Being terminated (a task ran past its deadline): takes nothing more, counts as gone. */
  stopping = false;
  lastError: Error | undefined;
  private nextId = 1;

  constructor(
    readonly index: number,
    entry: URL,
    workerData: unknown,
    /** Called when a call's deadline passes (the call is already rejected; the pool stops the worker). */
    private readonly onDeadline: (w: PoolWorker, kind: string, timeoutMs: number) => void = () => {},
    readonly role = 'inference worker',
  ) {
    this.worker = spawnWorker(entry, workerData, `engine-${role.replace(/\s+/g, '-')}-${index}`);
    this.worker.on('message', (res: RpcResponse) => {
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      if (p.timer) clearTimeout(p.timer);
      this.armHead();
      if (res.ok) p.resolve(res.result);
      else p.reject(fromWireError(res.error));
    });
    this.worker.on('error', (e) => {
      this.lastError = e;
    });
  }

  /** Gone or going: takes no new calls. */
  get gone(): boolean {
    return this.exited || this.stopping;
  }

  call<R, M extends { type: string } = { type: string }>(msg: M, transfer: TransferListItem[] = [], timeoutMs?: number, stage?: DeadlineStage, evenIfGone = false): Promise<R> {
    if (this.gone && !evenIfGone) return Promise.reject(new WorkerRestartedError(`${this.role} ${this.index} has exited; the task was not run`));
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      const p: Pending = { resolve: resolve as (v: unknown) => void, reject, kind: stage ? `${msg.type}:${stage}` : msg.type };
      if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) p.timeoutMs = timeoutMs;
      this.pending.set(id, p);
      try {
        this.worker.postMessage({ id, msg }, transfer);
      } catch (e) {
        this.pending.delete(id);
        reject(e as Error);
        return;
      }
      this.armHead();
    });
  }

  /**
   * The worker answers in arrival order, so the oldest pending call is the one it runs: its deadline
   * starts now (a task waiting in the inbox behind another is not charged for that wait).
   */
  private armHead(): void {
    const head = this.pending.entries().next();
    if (head.done) return;
    const [id, p] = head.value;
    if (p.timeoutMs === undefined || p.timer) return;
    const ms = p.timeoutMs;
    p.timer = setTimeout(() => {
      if (this.pending.get(id) !== p || this.gone) return;
      this.pending.delete(id);
      const [type, stage] = p.kind.split(':') as [string, DeadlineStage | undefined];
      p.reject(
        new DeadlineExceededError(
          stage ?? 'prepare',
          ms,
          `the ${STAGE_TASK[stage as Exclude<DeadlineStage, 'request'>] ?? `'${type}'`} task ran past its ${ms} ms deadline in ${this.role} ${this.index}; the worker was stopped and is being replaced`,
        ),
      );
      this.onDeadline(this, type, ms);
    }, ms);
    p.timer.unref?.();
  }

  /**
   * Reject everything this worker holds; called once when it exits. The oldest call is the one it was
   * running (`started`); the rest waited in its inbox and never ran.
   */
  failAll(reason: (kind: string, started: boolean) => Error): void {
    // A worker stopped at a deadline: the task it ran was already answered; the rest never started.
    let first = !this.stopping;
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(reason(p.kind.split(':')[0]!, first));
      first = false;
    }
    this.pending.clear();
  }
}

export interface WorkerPoolOptions {
  size: number;
  /** What a worker is called in errors and logs; default 'inference worker'. */
  role?: string;
  entry: URL;
  workerData?: unknown;
  logger: Logger;
  /** Run on each new worker (the first ones and every replacement) before it takes tasks. */
  init?: (w: PoolWorker) => Promise<void>;
  /** Delay before retrying a replacement whose start failed; doubles up to 30 s. */
  respawnDelayMs?: number;
  /** `run` tasks a worker may hold at once (running + waiting in its inbox); default 1. */
  depth?: number;
  /** Tasks that must not wait behind another such task in one worker's inbox. */
  isHeavy?: (msg: { type: string }) => boolean;
  /**
   * Sent to each live worker by close() before it is terminated, answered once the worker has let go
   * of its native resources (ORT sessions): terminating a thread while onnxruntime still completes
   * work for it aborts the whole process (Napi::Error thrown into a torn-down environment).
   */
  farewell?: { type: string };
  /** How long close() waits for that answer before terminating anyway; default 10 s. */
  farewellTimeoutMs?: number;
  /**
   * With `farewell`: a heavy task past its deadline is native work (an ORT run) that terminate() must
   * not cut short; its worker is retired instead: a replacement starts at once, the old one gets the
   * farewell after its run and is terminated on the answer, or after this long at the latest. Default 60 s.
   */
  retireGraceMs?: number;
}

export class WorkerPool {
  private get role(): string {
    return this.opts.role ?? 'inference worker';
  }
  private readonly workers: PoolWorker[] = [];
  private readonly queue: QueuedTask[] = [];
  private closing = false;
  private nextIndex = 0;
  private crashes = 0;
  private deadlineKills = 0;
  private readonly respawnDelayMs: number;
  /** The reason the last replacement failed to start, while no worker is live (for NotReadyError). */
  private startFailure: string | undefined;

  private constructor(private readonly opts: WorkerPoolOptions) {
    this.respawnDelayMs = opts.respawnDelayMs ?? 1000;
  }

  /** Start `size` workers and run `init` on each; rejects (after stopping them) if any fails. */
  static async start(opts: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(opts);
    const starts = Array.from({ length: Math.max(1, opts.size) }, () => pool.spawn());
    const results = await Promise.allSettled(starts);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      await pool.close();
      throw (failed as PromiseRejectedResult).reason;
    }
    return pool;
  }

  /** Workers alive and initialised. */
  liveCount(): number {
    return this.workers.filter((w) => w.available && !w.gone).length;
  }

  idleCount(): number {
    return this.workers.filter((w) => w.available && !w.gone && w.inflight === 0).length;
  }

  /** How many workers were stopped because a task ran past its deadline (for tests and logs). */
  deadlineKillCount(): number {
    return this.deadlineKills;
  }

  queued(): number {
    return this.queue.length;
  }

  /** How many workers have died since start (for tests and logs). */
  crashCount(): number {
    return this.crashes;
  }

  /** The live workers, for tests that need to act on one (e.g. kill it). */
  members(): readonly PoolWorker[] {
    return this.workers.filter((w) => !w.gone);
  }

  run<R, M extends { type: string } = { type: string }>(msg: M, transfer: TransferListItem[] = [], opts: RunOptions = {}): Promise<R> {
    if (this.closing) return Promise.reject(new WorkerCrashedError('worker pool is closed'));
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(reasonOf(signal));
    // Every worker is gone and the last replacement failed to start: say so now (503), do not queue.
    if (this.startFailure !== undefined && this.liveCount() === 0) return Promise.reject(this.notReady(1));
    return new Promise<R>((resolve, reject) => {
      let done = false;
      const onAbort = () => {
        if (done) return;
        done = true;
        // Still queued: never sent. Already in a worker: its answer is discarded when it comes.
        const i = this.queue.indexOf(task);
        if (i >= 0) this.queue.splice(i, 1);
        reject(reasonOf(signal!));
      };
      const settle =
        <A>(f: (a: A) => void) =>
        (a: A) => {
          if (done) return;
          done = true;
          signal?.removeEventListener('abort', onAbort);
          f(a);
        };
      const task: QueuedTask = { msg, transfer, resolve: settle(resolve as (v: unknown) => void), reject: settle(reject), opts };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(task);
      this.pump();
    });
  }

  /** Send to every live worker (including one still initialising: its messages are answered in order). */
  broadcast<R, M extends { type: string } = { type: string }>(msg: M): Promise<R[]> {
    const targets = this.workers.filter((w) => !w.gone);
    return Promise.all(targets.map((w) => w.call<R>(msg)));
  }

  /**
   * The worker to take `msg` now, if any: room in its inbox, least loaded, and nothing queued behind a
   * heavy task. A task handed to a worker's inbox cannot move to another worker that frees up first;
   * behind a batch inference (hundreds of ms on CPU) it would wait for that batch whatever the other
   * workers do, which with several workers made the slowest answers 3.5x the median
   * (bench/realpath, 2 workers, 1024² radiographs). So only light tasks get a successor in the inbox.
   */
  private pick(heavy: boolean): PoolWorker | undefined {
    const depth = Math.max(1, this.opts.depth ?? 1);
    let best: PoolWorker | undefined;
    for (const w of this.workers) {
      if (!w.available || w.gone || w.inflight >= depth || w.heavyInflight > 0) continue;
      // Fewest tasks first; among equals, one not running a heavy task (it will be free sooner).
      if (!best || w.inflight < best.inflight || (w.inflight === best.inflight && w.heavyInflight < best.heavyInflight)) best = w;
    }
    return best;
  }

  private pump(): void {
    // FIFO, except that a task no worker can take yet does not hold back the ones behind it.
    for (let i = 0; i < this.queue.length; ) {
      const task = this.queue[i]!;
      const heavy = this.opts.isHeavy?.(task.msg) ?? false;
      const w = this.pick(heavy);
      if (!w) {
        if (!this.pick(false)) return; // every inbox is full
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      w.inflight++;
      if (heavy) w.heavyInflight++;
      const stage = task.opts.stage ?? (heavy ? 'infer' : 'prepare');
      w.call(task.msg, task.transfer, task.opts.timeoutMs, stage).then(task.resolve, task.reject).finally(() => {
        w.inflight--;
        if (heavy) w.heavyInflight--;
        this.pump();
      });
    }
  }

  private async spawn(): Promise<PoolWorker> {
    const w = new PoolWorker(this.nextIndex++, this.opts.entry, this.opts.workerData, (victim, kind, ms) => this.stopStuck(victim, kind, ms), this.role);
    this.workers.push(w);
    const exited = new Promise<never>((_, reject) => {
      w.worker.once('exit', (code) => {
        w.exited = true;
        const i = this.workers.indexOf(w);
        if (i >= 0) this.workers.splice(i, 1);
        const cause = w.lastError ? `: ${w.lastError.message}` : '';
        // The task it ran failed with it; the ones waiting in its inbox never ran: those may be retried.
        const err = (kind: string, started: boolean) =>
          started
            ? new WorkerCrashedError(`${this.role} ${w.index} exited (code ${code}${cause}) while running '${kind}'; the request was not completed`)
            : new WorkerRestartedError(`${this.role} ${w.index} exited (code ${code}${cause}) before it ran '${kind}'; nothing of the request ran, retry it`);
        w.failAll(err);
        reject(new WorkerCrashedError(`${this.role} ${w.index} exited during start (code ${code}${cause})`));
        // A worker that dies before it served is retried by whoever awaited its start.
        if (!this.closing && w.available) this.onCrash(w, code);
      });
    });
    exited.catch(() => {});
    try {
      await Promise.race([this.opts.init ? this.opts.init(w) : Promise.resolve(), exited]);
    } catch (e) {
      if (!w.exited) await w.worker.terminate();
      throw e;
    }
    if (w.exited) throw new WorkerCrashedError(`${this.role} ${w.index} exited during start`);
    if (this.closing) {
      await w.worker.terminate();
      throw new WorkerCrashedError('worker pool closed');
    }
    w.available = true;
    this.startFailure = undefined;
    this.pump();
    return w;
  }

  /**
   * A task ran past its deadline: the worker may be stuck in synchronous JS or wasm, which nothing but
   * terminate() interrupts. It takes no more tasks from now on; its exit goes down the crash path
   * (what it still holds is rejected, a replacement starts).
   */
  private stopStuck(w: PoolWorker, kind: string, timeoutMs: number): void {
    if (w.gone) return;
    w.stopping = true;
    this.deadlineKills++;
    w.lastError ??= new Error(`terminated: a '${kind}' task ran past its ${timeoutMs} ms deadline`);
    const farewell = this.opts.farewell;
    if (farewell && (this.opts.isHeavy?.({ type: kind }) ?? false)) {
      this.opts.logger.error({ worker: w.index, task: kind, deadlineMs: timeoutMs }, 'inference run past its deadline; retiring the worker after the run and starting a replacement now');
      // Its exit is then not a crash: the replacement is already on its way.
      w.available = false;
      this.respawn(this.respawnDelayMs);
      void this.retire(w, farewell, this.opts.retireGraceMs ?? 60_000);
    } else {
      this.opts.logger.error({ worker: w.index, task: kind, deadlineMs: timeoutMs }, 'inference task ran past its deadline; terminating the worker and starting a replacement');
      void w.worker.terminate();
    }
    // What the pool queued can go to the other workers meanwhile.
    this.pump();
  }

  private async retire(w: PoolWorker, farewell: { type: string }, graceMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
    await Promise.race([w.call(farewell, [], undefined, undefined, true).then(() => undefined, () => undefined), grace]).finally(() => clearTimeout(timer));
    if (!w.exited) await w.worker.terminate();
  }

  private onCrash(w: PoolWorker, code: number): void {
    this.crashes++;
    if (!w.stopping) this.opts.logger.error({ worker: w.index, exitCode: code, err: w.lastError?.message }, `${this.role} died; starting a replacement`);
    this.respawn(this.respawnDelayMs);
  }

  private respawn(delayMs: number): void {
    if (this.closing) return;
    this.spawn().catch((e: Error) => {
      if (this.closing) return;
      this.opts.logger.error({ err: e.message, retryInMs: delayMs }, `replacement ${this.role} failed to start`);
      if (this.liveCount() === 0) {
        // Nobody can take the queued tasks: fail them now rather than let callers hang. Not a fault of
        // the requests: the service is not ready (503 with a retry hint) until a replacement starts.
        this.startFailure = e.message;
        const retry = Math.max(1, delayMs / 1000);
        for (const t of this.queue.splice(0)) t.reject(this.notReady(retry));
      }
      setTimeout(() => this.respawn(Math.min(delayMs * 2, 30_000)), delayMs).unref();
    });
  }

  private notReady(retryAfterSeconds: number): NotReadyError {
    return new NotReadyError(`no ${this.role} is running${this.startFailure ? ` (the last replacement failed to start: ${this.startFailure})` : ''}; retry later`, retryAfterSeconds);
  }

  /** Stop every worker; queued tasks are rejected (drain the engine first to finish them). */
  async close(): Promise<void> {
    this.closing = true;
    for (const t of this.queue.splice(0)) t.reject(new WorkerCrashedError('worker pool closed'));
    const all = [...this.workers];
    const farewell = this.opts.farewell;
    if (farewell) {
      // A worker answers in order: the farewell comes back after whatever it still runs (an unload's release too).
      const grace = this.opts.farewellTimeoutMs ?? 10_000;
      await Promise.all(
        all.filter((w) => !w.gone).map((w) => {
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise<void>((r) => (timer = setTimeout(r, grace)));
          return Promise.race([w.call(farewell).then(() => undefined, () => undefined), timeout]).finally(() => clearTimeout(timer));
        }),
      );
    }
    await Promise.all(all.map((w) => w.worker.terminate()));
    for (const w of all) w.failAll(() => new WorkerCrashedError('worker pool closed'));
  }
}
