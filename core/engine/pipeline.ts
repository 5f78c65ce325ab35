/**
 * The segment pipeline: validate a request, decode and preprocess it in a worker, batch it with others
 * for the same model version, run the batch in a worker (session.run + post-processing), and assemble
 * the SegmentResult. Which version serves a request, and keeping it loaded while it runs, is the
 * registry's business (registry.ts).
 */
import type { SegmentResult } from '../segmentation/records.ts';
import { Batcher, type BatchInfo } from './batcher.ts';
import type { EngineConfig } from './config.ts';
import { NotReadyError } from './errors.ts';
import { modelKey } from './repository.ts';
import type { LoadedModel, ModelChoice, ModelRegistry } from './registry.ts';
import { ownedBytes, validateRequest, type SegmentRequest } from './request.ts';
import type { WorkerPool } from './worker-pool.ts';
import { epochMs, type InferEntry, type InferMsg, type InferResult, type PrepareMsg, type PrepareResult } from './worker-protocol.ts';

export interface EngineObserver {
  batch?(model: string, size: number): void;
  inference?(model: string, provider: string, seconds: number): void;
  decode?(seconds: number): void;
  preprocess?(seconds: number): void;
  queueDepth?(depth: number): void;
}

interface BatchOutcome {
  result: InferResult['entries'][number];
  startedAt: number;
  runMs: number;
  provider: LoadedModel['provider'];
}

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class SegmentPipeline {
  private readonly batcher: Batcher<InferEntry, BatchOutcome>;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly registry: ModelRegistry,
    private readonly pool: WorkerPool,
    private readonly cfg: Pick<EngineConfig, 'maxBatch' | 'maxDelayMs' | 'maxQueue' | 'workers' | 'maxPixels'>,
    private readonly observer: EngineObserver,
  ) {
    this.batcher = new Batcher<InferEntry, BatchOutcome>({
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

  segment(req: SegmentRequest): Promise<SegmentResult> {
    const t0 = performance.now();
    const choice = this.registry.resolve(req.model, req.version);
    const lm = this.registry.current(choice);
    // Cheap checks before admission (on-demand versions are checked once loaded).
    if (lm) validateRequest(req, lm.entry.manifest);
    const p = this.admitted(req, choice, lm, t0);
    this.inflight.add(p);
    const forget = () => this.inflight.delete(p);
    p.then(forget, forget);
    return p;
  }

  private async admitted(req: SegmentRequest, choice: ModelChoice, known: LoadedModel | undefined, t0: number): Promise<SegmentResult> {
    const lm = known ?? (await this.loadOnDemand(choice));
    const { threshold, minArea, tta } = validateRequest(req, lm.entry.manifest);
    const images = tta ? 2 : 1;
    const reservation = this.batcher.reserve(images);
    this.registry.acquire(lm);
    try {
      const prep = await this.prepare(req, lm, tta);
      const enqueuedAt = epochMs();
      const entry: InferEntry = { tensors: prep.tensors, rows: prep.image.rows, cols: prep.image.columns, threshold, minArea };
      const outcome = await this.batcher.submit(lm.entry.key, entry, reservation, images);
      return assemble(lm, prep, outcome, enqueuedAt, t0);
    } finally {
      reservation.release();
      this.registry.release(lm);
    }
  }

  private async loadOnDemand(choice: ModelChoice): Promise<LoadedModel> {
    try {
      return await this.registry.ensureLoaded(choice.name, choice.version!);
    } catch (e) {
      throw new NotReadyError(`model ${modelKey(choice.name, choice.version!)} cannot be served: ${msg(e)}`);
    }
  }

  /** Decode and preprocess in a worker (the bytes move there). */
  private async prepare(req: SegmentRequest, lm: LoadedModel, tta: boolean): Promise<PrepareResult> {
    const bytes = ownedBytes(req);
    const prepMsg: PrepareMsg = { type: 'prepare', dicom: bytes, maxPixels: this.cfg.maxPixels, spec: lm.entry.manifest.preprocessing, tta };
    if (req.frame !== undefined) prepMsg.frame = req.frame;
    if (req.preview) prepMsg.preview = { maxSide: req.preview.maxSide };
    const prep = await this.pool.run<PrepareResult>(prepMsg, [bytes.buffer as ArrayBuffer]);
    this.observer.decode?.(prep.decodeMs / 1000);
    this.observer.preprocess?.(prep.preprocessMs / 1000);
    return prep;
  }

  private async runBatch(key: string, items: InferEntry[], info: BatchInfo): Promise<BatchOutcome[]> {
    const name = this.registry.get(key)?.entry.name ?? key.split(':')[0]!;
    this.observer.batch?.(name, info.images);
    const message: InferMsg = { type: 'infer', key, entries: items };
    const transfer = items.flatMap((e) => e.tensors.map((t) => t.buffer as ArrayBuffer));
    const r = await this.pool.run<InferResult>(message, transfer);
    this.observer.inference?.(name, r.provider, r.runMs / 1000);
    return r.entries.map((result) => ({ result, startedAt: r.startedAt, runMs: r.runMs, provider: r.provider }));
  }

  /** Dispatch what waits now; resolve once every admitted request has finished. */
  async drain(): Promise<void> {
    this.batcher.flush();
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    await this.batcher.idle();
  }
}

function assemble(lm: LoadedModel, prep: PrepareResult, o: BatchOutcome, enqueuedAt: number, t0: number): SegmentResult {
  const result: SegmentResult = {
    model: { name: lm.entry.name, version: lm.entry.version, executionProvider: o.provider },
    image: prep.image,
    masks: o.result.masks,
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
