/**
 * The inference engine: the one path from "DICOM bytes arrive" to "masks come out", shared by the HTTP
 * service and the batch CLI. The main thread validates, queues, batches and answers; decoding,
 * preprocessing, session.run and postprocessing all run in a small worker_threads pool (each worker
 * holds one session per model). core/engine/README.md records the measurements behind that split.
 *
 * This class is the facade: the model registry (registry.ts) decides which versions are loaded and
 * served, the segment pipeline (pipeline.ts) runs requests, and Engine owns their lifecycle.
 */
import type { Logger } from 'pino';
import { planThreads } from '../runtime/session.ts';
import type { SegmentResult } from '../segmentation/records.ts';
import { EngineConfigSchema, type EngineConfig, type EngineConfigInput } from './config.ts';
import { InvalidRequestError, NotReadyError } from './errors.ts';
import { SegmentPipeline, type EngineObserver } from './pipeline.ts';
import { ModelRegistry, type ModelInfo, type ModelListing, type ReloadResult } from './registry.ts';
import type { SegmentRequest, SegmentResponse, TensorRequest, TensorResult } from './request.ts';
import { WorkerPool } from './worker-pool.ts';
import type { InferenceWorkerData } from './worker-protocol.ts';

export type { EngineConfig, EngineConfigInput } from './config.ts';
export type { EngineObserver } from './pipeline.ts';
export type { InvalidModelInfo, ModelInfo, ModelListing, ModelStatus, ReloadResult } from './registry.ts';
export type { SegmentRequest, SegmentResponse, TensorImageResult, TensorRequest, TensorResult } from './request.ts';
export type { SegmentResult } from '../segmentation/records.ts';

/** `run` tasks a worker holds at once: the one it runs and the next (see WorkerPool `depth`). */
const WORKER_INBOX_DEPTH = 2;

const WORKER_ENTRY = new URL(import.meta.url.endsWith('.ts') ? './inference-worker.ts' : './inference-worker.js', import.meta.url);

/** Parse (defaults filled, bounds checked) or throw InvalidRequestError naming the field. */
function parseConfig(input: EngineConfigInput): EngineConfig {
  const r = EngineConfigSchema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = String(issue.path[0] ?? 'config');
  throw new InvalidRequestError(field, `engine config: ${field} ${issue.message}`);
}

export class Engine {
  private accepting = false;
  private closed = false;

  private constructor(
    private readonly pool: WorkerPool,
    private readonly preparePool: WorkerPool | undefined,
    private readonly registry: ModelRegistry,
    private readonly pipeline: SegmentPipeline,
  ) {}

  /**
   * Start the workers, load every model's newest loadable version and warm each up (one run at batch 1
   * and at maxBatch; every size on CUDA) before resolving. A model whose versions all fail is listed as
   * not ready.
   */
  static async start(input: EngineConfigInput, logger: Logger, observer: EngineObserver = {}): Promise<Engine> {
    const parsed = parseConfig(input);
    const log = logger.child({ component: 'engine' });
    const plan = planThreads({ workers: parsed.workers, intraOpThreads: parsed.intraOpThreads, prepareWorkers: parsed.prepareWorkers, maxBatch: parsed.maxBatch, provider: parsed.provider });
    if (plan.adjusted) log.warn({ workers: parsed.workers, intraOpThreads: parsed.intraOpThreads }, plan.adjusted);
    // From here on the plan's figures are the config's (0 = automatic is resolved once, here).
    const cfg: EngineConfig = { ...parsed, workers: plan.workers, intraOpThreads: plan.intraOpThreads, prepareWorkers: plan.prepareWorkers, maxBatch: plan.maxBatch };
    const session: InferenceWorkerData['session'] = { provider: cfg.provider, deviceId: cfg.deviceId, intraOpThreads: plan.intraOpThreads, intraOpSpinning: cfg.intraOpSpinning };
    const registry = new ModelRegistry(cfg, log);
    const pool = await WorkerPool.start({
      size: cfg.workers,
      entry: WORKER_ENTRY,
      workerData: { session } satisfies InferenceWorkerData,
      logger: log,
      // A worker gets its next task (typically a decode) while it still runs one, so it never idles
      // waiting for this thread between tasks; batches never queue behind one another in a worker.
      depth: WORKER_INBOX_DEPTH,
      isHeavy: (m) => m.type === 'infer',
      init: (w) => registry.initWorker(w),
      farewell: { type: 'shutdown' },
    });
    registry.attach(pool);
    // Decode/preprocess workers: no sessions, so nothing to load; their own queue and deadlines.
    let preparePool: WorkerPool | undefined;
    try {
      if (plan.prepareWorkers > 0) {
        preparePool = await WorkerPool.start({
          size: plan.prepareWorkers,
          role: 'decode worker',
          entry: WORKER_ENTRY,
          workerData: { session } satisfies InferenceWorkerData,
          logger: log.child({ pool: 'prepare' }),
          depth: WORKER_INBOX_DEPTH,
          farewell: { type: 'shutdown' },
        });
      }
      await registry.reload();
    } catch (e) {
      await Promise.all([pool.close(), preparePool?.close()]);
      throw e;
    }
    const engine = new Engine(pool, preparePool, registry, new SegmentPipeline(registry, pool, preparePool, cfg, observer));
    engine.accepting = true;
    log.info({ models: registry.served(), workers: cfg.workers, intraOpThreads: session.intraOpThreads, prepareWorkers: plan.prepareWorkers, maxBatch: plan.maxBatch, provider: cfg.provider }, 'engine ready');
    return engine;
  }

  /**
   * Ready (for /readyz): accepting requests, at least one live worker, and the default model (the one
   * a request naming none gets) loaded. Another model failing to load does not make the engine
   * unready: it is listed (listing(), models()) with its error, and requests for it fail on their own.
   */
  ready(): boolean {
    return this.readiness().ready;
  }

  /** ready(), with the reason when not (for the /readyz body and logs). */
  readiness(): { ready: true } | { ready: false; reason: string } {
    if (this.closed) return { ready: false, reason: 'engine is closed' };
    if (!this.accepting) return { ready: false, reason: 'engine is draining' };
    if (this.pool.liveCount() === 0) return { ready: false, reason: 'no inference worker is running' };
    const name = this.registry.defaultModelName();
    if (!name) return { ready: false, reason: 'the model repository holds no model' };
    const info = this.registry.describe(name);
    if (!info || info.status !== 'ready') return { ready: false, reason: `default model ${name} is not ready${info?.error ? `: ${info.error}` : ''}` };
    return { ready: true };
  }

  models(): ModelInfo[] {
    return this.registry.models();
  }

  /** Every model, including versions whose manifest is invalid (manifest null, status 'invalid', error). */
  listing(): ModelListing[] {
    return this.registry.listing();
  }

  /** One model's state (its default version, or `version`), whether or not its manifest is valid. */
  describe(name: string, version?: string): ModelListing | undefined {
    return this.registry.describe(name, version);
  }

  model(name: string, version?: string): ModelInfo | undefined {
    return this.registry.model(name, version);
  }

  defaultModel(): ModelInfo | undefined {
    const name = this.registry.defaultModelName();
    return name ? this.registry.model(name) : undefined;
  }

  queueDepth(): number {
    return this.pipeline.queueDepth();
  }

  /** Re-scan the repository (see ModelRegistry.reload): newer versions load, vanished ones retire. */
  reload(): Promise<ReloadResult> {
    return this.registry.reload();
  }

  async segment(req: SegmentRequest): Promise<SegmentResponse> {
    if (!this.accepting || this.closed) throw new NotReadyError(this.closed ? 'engine is closed' : 'engine is draining; not accepting requests');
    return this.pipeline.segment(req);
  }

  /**
   * Run already-preprocessed images (N x C x H x W as the manifest declares the input) through the same
   * admission, batcher, workers, deadlines and cancellation as segment(), skipping decode and preprocess;
   * masks and probabilities come back at the model's output size.
   */
  async infer(req: TensorRequest): Promise<TensorResult> {
    if (!this.accepting || this.closed) throw new NotReadyError(this.closed ? 'engine is closed' : 'engine is draining; not accepting requests');
    return this.pipeline.infer(req);
  }

  /** Stop accepting, finish everything queued and in flight, then resolve. */
  async drain(): Promise<void> {
    this.accepting = false;
    await this.pipeline.drain();
  }

  /** Drain, then stop the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.drain();
    this.closed = true;
    await Promise.all([this.pool.close(), this.preparePool?.close()]);
  }
}
