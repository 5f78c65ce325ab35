/**
 * The segment pipeline: validate a request, decode and preprocess it in a worker, batch it with others
 * for the same model version, run the batch in a worker (session.run, and post-processing there unless
 * the plan has prepare workers, which then post-process each image), and assemble the SegmentResult.
 * Which version serves a request, and keeping it loaded while it runs, is the registry's business
 * (registry.ts).
 */
import type { SegmentResult } from '../segmentation/records.ts';
import { Batcher, type BatchInfo } from './batcher.ts';
import type { EngineConfig } from './config.ts';
import { DeadlineExceededError, ModelInvalidError, NotReadyError, RequestCancelledError, WorkerCrashedError } from './errors.ts';
import { modelKey } from './repository.ts';
import type { LoadedModel, ModelChoice, ModelRegistry } from './registry.ts';
import {
  ownedBytes,
  ownedImage,
  validateRequest,
  validateTensorRequest,
  type SegmentRequest,
  type SegmentResponse,
  type TensorRequest,
  type TensorResult,
} from './request.ts';
import type { WorkerPool } from './worker-pool.ts';
import { epochMs, masksFromWire, wantsOf, type InferEntry, type InferMsg, type InferResult, type Postprocessed, type PostprocessMsg, type PrepareMsg, type PrepareResult } from './worker-protocol.ts';

export interface EngineObserver {
  batch?(model: string, size: number): void;
  inference?(model: string, provider: string, seconds: number): void;
  decode?(seconds: number): void;
  preprocess?(seconds: number): void;
  queueDepth?(depth: number): void;
}

/** What waits in the batcher: the worker's entry, and the request's signal (a cancelled item is skipped). */
interface BatchItem {
  entry: InferEntry;
  signal: AbortSignal;
}

interface BatchOutcome {
  /** Post-processed; or, from a batch run with `raw`, the entry's outputs still to post-process. */
  result: InferResult['entries'][number];
  startedAt: number;
  runMs: number;
  provider: LoadedModel['provider'];
}

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class SegmentPipeline {
  private readonly batcher: Batcher<BatchItem, BatchOutcome | undefined>;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly registry: ModelRegistry,
    private readonly pool: WorkerPool,
    /** Decode/preprocess workers, when the plan has them (else `pool` decodes between batches). */
    private readonly preparePool: WorkerPool | undefined,
    private readonly cfg: Pick<EngineConfig, 'maxBatch' | 'maxDelayMs' | 'maxQueue' | 'workers' | 'maxPixels' | 'taskTimeoutMs' | 'requestTimeoutMs'>,
    private readonly observer: EngineObserver,
  ) {
    this.batcher = new Batcher<BatchItem, BatchOutcome | undefined>({
      maxBatch: (key) => registry.get(key)?.maxBatch ?? cfg.maxBatch,
      maxDelayMs: cfg.maxDelayMs,
      maxQueue: cfg.maxQueue,
      maxConcurrent: cfg.workers,
      run: (key, items, info) => this.runBatch(key, items, info),
      eagerWhenNoneReserved: true,
      onDepth: (d) => observer.queueDepth?.(d),
    });
  }

  queueDepth(): number {
    return this.batcher.depth();
  }

  segment(req: SegmentRequest): Promise<SegmentResponse> {
    const t0 = performance.now();
    if (req.signal?.aborted) throw new RequestCancelledError();
    const choice = this.registry.resolve(req.model, req.version);
    const lm = this.registry.current(choice);
    // Cheap checks before admission (on-demand versions are checked once loaded).
    if (lm) validateRequest(req);
    return this.guarded(req.signal, (signal) => this.admitted(req, choice, lm, t0, signal));
  }

  /**
   * A raw-tensor request: the same admission (N slots), batcher (each image is one item, batched with
   * segment()'s images of the same model version), deadlines and cancellation, without the prepare task.
   */
  infer(req: TensorRequest): Promise<TensorResult> {
    const t0 = performance.now();
    if (req.signal?.aborted) throw new RequestCancelledError();
    const choice = this.registry.resolve(req.model, req.version);
    const lm = this.registry.current(choice);
    if (lm) validateTensorRequest(req, inputShape(lm), this.cfg.maxQueue);
    return this.guarded(req.signal, (signal) => this.admittedTensor(req, choice, lm, t0, signal));
  }

  /**
   * Run `admit` under the request deadline and the caller's signal; drain() waits for it. The request
   * fails as soon as either aborts (the work goes on and its result is dropped).
   */
  private guarded<T>(callerSignal: AbortSignal | undefined, admit: (signal: AbortSignal) => Promise<T>): Promise<T> {
    // One signal for everything that ends the request early: the caller's, or the request deadline.
    const ctl = new AbortController();
    const ms = this.cfg.requestTimeoutMs;
    const deadline = setTimeout(
      () => ctl.abort(new DeadlineExceededError('request', ms, `the request did not finish within its ${ms} ms deadline (queueing and both worker tasks included)`)),
      ms,
    );
    const cancel = () => ctl.abort(new RequestCancelledError());
    callerSignal?.addEventListener('abort', cancel, { once: true });
    const work = admit(ctl.signal);
    // drain() waits for the work itself (a discarded task still occupies its worker until it ends).
    this.inflight.add(work);
    const forget = () => {
      this.inflight.delete(work);
      clearTimeout(deadline);
      callerSignal?.removeEventListener('abort', cancel);
    };
    work.then(forget, forget);
    return raceAbort(work, ctl.signal);
  }

  private async admitted(req: SegmentRequest, choice: ModelChoice, known: LoadedModel | undefined, t0: number, signal: AbortSignal): Promise<SegmentResponse> {
    const lm = known ?? (await this.loadOnDemand(choice));
    const { rules, tta } = validateRequest(req);
    if (signal.aborted) throw signal.reason;
    const images = tta ? 2 : 1;
    const reservation = this.batcher.reserve(images);
    this.registry.acquire(lm);
    try {
      const prep = await this.prepare(req, lm, tta, signal);
      if (signal.aborted) throw signal.reason;
      const enqueuedAt = epochMs();
      const entry: InferEntry = { tensors: prep.tensors, rows: prep.image.rows, cols: prep.image.columns, rules };
      if (req.probabilities || req.masks === false) entry.outputs = { masks: req.masks ?? true, probabilities: req.probabilities ?? false };
      const batched = await this.batcher.submit(lm.entry.key, { entry, signal }, reservation, images);
      if (!batched) throw signal.reason;
      const outcome = await this.postprocessed(lm, entry, batched, signal);
      const result: SegmentResponse = assemble(lm, prep, outcome, enqueuedAt, t0);
      if (outcome.result.probabilities) result.probabilities = outcome.result.probabilities;
      return result;
    } finally {
      reservation.release();
      this.registry.release(lm);
    }
  }

  private async admittedTensor(req: TensorRequest, choice: ModelChoice, known: LoadedModel | undefined, t0: number, signal: AbortSignal): Promise<TensorResult> {
    const lm = known ?? (await this.loadOnDemand(choice));
    const shape = inputShape(lm);
    const { rules, outputs, images } = validateTensorRequest(req, shape, this.cfg.maxQueue);
    if (signal.aborted) throw signal.reason;
    const reservation = this.batcher.reserve(images);
    this.registry.acquire(lm);
    try {
      const [, , height, width] = lm.entry.manifest.output.shape;
      const plane = shape[0] * shape[1] * shape[2];
      const enqueuedAt = epochMs();
      const outcomes = await Promise.all(
        Array.from({ length: images }, async (_, i) => {
          const entry: InferEntry = { tensors: [ownedImage(req, i, plane, images)], rows: height, cols: width, rules, outputs };
          const batched = await this.batcher.submit(lm.entry.key, { entry, signal }, reservation, 1);
          return batched && (await this.postprocessed(lm, entry, batched, signal));
        }),
      );
      const done = outcomes.filter((o): o is BatchOutcome => o !== undefined);
      if (done.length !== images) throw signal.reason;
      return {
        model: { name: lm.entry.name, version: lm.entry.version, executionProvider: done[0]!.provider },
        images: done.map((o) => ({
          ...(outputs.masks ? { masks: masksFromWire(o.result.masks) } : {}),
          ...(o.result.probabilities ? { probabilities: o.result.probabilities } : {}),
        })),
        outputShape: [lm.entry.manifest.output.shape[1], height, width],
        timings: {
          decodeMs: 0,
          preprocessMs: 0,
          queueMs: Math.max(0, Math.max(...done.map((o) => o.startedAt)) - enqueuedAt),
          inferenceMs: Math.max(...done.map((o) => o.runMs)),
          postprocessMs: done.reduce((n, o) => n + o.result.postprocessMs, 0),
          totalMs: performance.now() - t0,
        },
      };
    } finally {
      reservation.release();
      this.registry.release(lm);
    }
  }

  private async loadOnDemand(choice: ModelChoice): Promise<LoadedModel> {
    try {
      return await this.registry.ensureLoaded(choice.name, choice.version!);
    } catch (e) {
      const key = modelKey(choice.name, choice.version!);
      // A fault of the files (remembered, listed, 409 until fixed and reloaded), or of the moment (503).
      if (e instanceof ModelInvalidError) throw e;
      if (e instanceof NotReadyError || e instanceof WorkerCrashedError || e instanceof DeadlineExceededError) {
        throw new NotReadyError(`model ${key} cannot be loaded now: ${msg(e)}`);
      }
      throw new ModelInvalidError(key, `model ${key} cannot be served: ${msg(e)}`);
    }
  }

  /** Decode and preprocess in a worker (the bytes move there), within the task deadline. */
  private async prepare(req: SegmentRequest, lm: LoadedModel, tta: boolean, signal: AbortSignal): Promise<PrepareResult> {
    const bytes = ownedBytes(req);
    const prepMsg: PrepareMsg = { type: 'prepare', dicom: bytes, maxPixels: this.cfg.maxPixels, spec: lm.entry.manifest.preprocessing, tta };
    if (req.frame !== undefined) prepMsg.frame = req.frame;
    if (req.preview) prepMsg.preview = { maxSide: req.preview.maxSide };
    // Shared bytes (one multi-frame file for several frames) are posted, not transferred.
    const transfer = bytes.buffer instanceof ArrayBuffer ? [bytes.buffer] : [];
    const prep = await (this.preparePool ?? this.pool).run<PrepareResult>(prepMsg, transfer, { timeoutMs: this.cfg.taskTimeoutMs, stage: 'prepare', signal });
    this.observer.decode?.(prep.decodeMs / 1000);
    this.observer.preprocess?.(prep.preprocessMs / 1000);
    return prep;
  }

  /**
   * A batch outcome post-processed: as it came when the inference worker did it; else (`raw`) in a
   * prepare worker, after the batch has left the inference lane, within the task deadline.
   */
  private async postprocessed(lm: LoadedModel, entry: InferEntry, o: BatchOutcome, signal: AbortSignal): Promise<BatchOutcome> {
    const raw = o.result.raw;
    if (!raw || !this.preparePool) return o;
    const post: PostprocessMsg = {
      type: 'postprocess',
      key: lm.entry.key,
      sha256: lm.entry.sha256,
      manifest: lm.entry.manifest,
      outputs: raw,
      rows: entry.rows,
      cols: entry.cols,
      rules: entry.rules,
      wants: wantsOf(entry),
    };
    const transfer = raw.map((r) => r.buffer as ArrayBuffer);
    const result = await this.preparePool.run<Postprocessed>(post, transfer, { timeoutMs: this.cfg.taskTimeoutMs, stage: 'postprocess', signal });
    return { ...o, result };
  }

  /**
   * One batch in a worker, within the task deadline. Items whose request was cancelled meanwhile are
   * left out (undefined); a batch is never cancelled as a whole, since it serves other requests.
   */
  private async runBatch(key: string, items: BatchItem[], info: BatchInfo): Promise<Array<BatchOutcome | undefined>> {
    const live = items.filter((i) => !i.signal.aborted);
    if (live.length === 0) return items.map(() => undefined);
    const name = this.registry.get(key)?.entry.name ?? key.split(':')[0]!;
    const images = live.reduce((n, i) => n + i.entry.tensors.length, 0);
    this.observer.batch?.(name, live.length === items.length ? info.images : images);
    const message: InferMsg = { type: 'infer', key, entries: live.map((i) => i.entry) };
    if (this.preparePool) message.raw = true;
    const transfer = live.flatMap((i) => i.entry.tensors.map((t) => t.buffer as ArrayBuffer));
    const r = await this.pool.run<InferResult>(message, transfer, { timeoutMs: this.cfg.taskTimeoutMs, stage: 'infer' });
    this.observer.inference?.(name, r.provider, r.runMs / 1000);
    const out = new Map(live.map((item, k) => [item, { result: r.entries[k]!, startedAt: r.startedAt, runMs: r.runMs, provider: r.provider }]));
    return items.map((i) => out.get(i));
  }

  /** Dispatch what waits now; resolve once every admitted request has finished. */
  async drain(): Promise<void> {
    this.batcher.flush();
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    await this.batcher.idle();
  }
}

/** One image's C, H, W as the model's manifest declares its input. */
function inputShape(lm: LoadedModel): [number, number, number] {
  const [, c, h, w] = lm.entry.manifest.input.shape;
  return [c, h, w];
}

/** `work`, or the signal's reason as soon as it aborts (the work goes on and its result is dropped). */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function assemble(lm: LoadedModel, prep: PrepareResult, o: BatchOutcome, enqueuedAt: number, t0: number): SegmentResult {
  const result: SegmentResult = {
    model: { name: lm.entry.name, version: lm.entry.version, executionProvider: o.provider },
    image: prep.image,
    masks: masksFromWire(o.result.masks),
    timings: {
      decodeMs: prep.decodeMs,
      preprocessMs: prep.preprocessMs,
      queueMs: Math.max(0, o.startedAt - enqueuedAt),
      inferenceMs: o.runMs,
      postprocessMs: o.result.postprocessMs,
      totalMs: performance.now() - t0,
    },
  };
  if (prep.preview) result.preview = prep.preview;
  return result;
}
