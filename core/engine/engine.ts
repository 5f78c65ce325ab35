/**
 * The inference engine: the one path from "DICOM bytes arrive" to "masks come out", shared by the HTTP
 * service and the batch CLI. The main thread validates, queues, batches and answers; decoding,
 * preprocessing, session.run and postprocessing all run in a small worker_threads pool (each worker
 * holds one session per model). core/engine/README.md records the measurements behind that split.
 */
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { ModelManifest } from '../manifest.ts';
import { createMask, type Mask } from '../mask.ts';
import { EngineConfigSchema, type EngineConfig, type EngineConfigInput } from './config.ts';
import { Batcher, type BatchInfo, type Reservation } from './batcher.ts';
import { InvalidRequestError, ModelInvalidError, ModelNotFoundError, NotReadyError } from './errors.ts';
import { MAX_PREVIEW_SIDE, type Preview } from './preview.ts';
import { compareVersions, listRepository, modelKey, readManifest, readModelVersion, type ModelVersionEntry } from './repository.ts';
import { planThreads, type Provider } from '../runtime/session.ts';
import { WorkerPool, type PoolWorker } from './worker-pool.ts';
import {
  epochMs,
  type ImageMeta,
  type InferEntry,
  type InferMsg,
  type InferResult,
  type InferenceWorkerData,
  type LoadMsg,
  type LoadResult,
  type PrepareMsg,
  type PrepareResult,
} from './worker-protocol.ts';

export type { EngineConfig, EngineConfigInput } from './config.ts';

export interface EngineObserver {
  batch?(model: string, size: number): void;
  inference?(model: string, provider: string, seconds: number): void;
  decode?(seconds: number): void;
  preprocess?(seconds: number): void;
  queueDepth?(depth: number): void;
}

export interface ModelInfo {
  name: string;
  version: string;
  versions: string[];
  manifest: ModelManifest;
  executionProvider: 'cpu' | 'cuda' | null;
  ready: boolean;
  loadedAt: string;
  error?: string;
}

export interface SegmentRequest {
  dicom: Uint8Array;
  model?: string;
  version?: string;
  threshold?: number;
  minArea?: number;
  tta?: boolean;
  frame?: number;
  /**
   * Let the engine take the bytes' ArrayBuffer instead of copying it (the caller's array is detached
   * afterwards). Only honoured when the array spans its whole buffer; default false (copy).
   */
  transferDicom?: boolean;
  /**
   * Also return an 8-bit preview of the decoded frame (windowed and box-filtered exactly as
   * core/engine/preview.ts says), made in the worker from the image it decoded anyway.
   */
  preview?: { maxSide: number };
}

export interface SegmentResult {
  model: { name: string; version: string; executionProvider: 'cpu' | 'cuda' };
  image: { rows: number; columns: number; frame: number; numberOfFrames: number; transferSyntaxUid: string; transferSyntaxName: string; sopInstanceUid: string | null; modality: string | null };
  masks: Array<{ label: string; mask: Mask; area: number; bbox: [number, number, number, number] | null; empty: boolean; threshold: number; minArea: number }>;
  /** Present when the request asked for one. */
  preview?: Preview;
  timings: { decodeMs: number; preprocessMs: number; queueMs: number; inferenceMs: number; postprocessMs: number; totalMs: number };
}

export interface ReloadResult {
  /** `name:version` of every version newly loaded (or reloaded because its files changed). */
  loaded: string[];
  failed: Array<{ model: string; error: string }>;
  /** `name:version` of versions no longer served (superseded or gone from the repository). */
  removed: string[];
}

interface LoadedModel {
  entry: ModelVersionEntry;
  provider: Provider;
  loadedAt: string;
  /** Requests holding this version (a retired version is unloaded when this reaches 0). */
  refs: number;
  retired: boolean;
  maxBatch: number;
}

interface ModelState {
  name: string;
  versions: string[];
  /** Key of the version served by default. */
  current?: string;
  /** Last failure to load a version of this model (the newest one that was tried). */
  error?: string;
  /** Every version's manifest that parsed at the last scan (for listings of versions not loaded). */
  manifests: Map<string, ModelManifest>;
}

interface BatchItem {
  entry: InferEntry;
}

interface BatchOutcome {
  result: InferResult['entries'][number];
  startedAt: number;
  runMs: number;
  provider: Provider;
}

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

/** A copy that owns its buffer (Buffer#slice would return a view on the caller's memory). */
function copyBytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class Engine {
  private pool!: WorkerPool;
  private readonly batcher: Batcher<BatchItem, BatchOutcome>;
  private readonly state = new Map<string, ModelState>();
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly loading = new Map<string, Promise<LoadedModel>>();
  /** Which keys each live worker holds, so a worker started mid-load still gets every model. */
  private readonly workerModels = new WeakMap<PoolWorker, Set<string>>();
  private readonly inflight = new Set<Promise<unknown>>();
  private accepting = false;
  private closed = false;
  private reloadChain: Promise<unknown> = Promise.resolve();
  private readonly sessionConfig: InferenceWorkerData['session'];

  private constructor(
    private readonly cfg: EngineConfig,
    private readonly logger: Logger,
    private readonly observer: EngineObserver,
  ) {
    const plan = planThreads(cfg.workers, cfg.intraOpThreads, availableParallelism());
    if (plan.adjusted) logger.warn({ workers: cfg.workers, intraOpThreads: cfg.intraOpThreads }, plan.adjusted);
    this.sessionConfig = { provider: cfg.provider, deviceId: cfg.deviceId, intraOpThreads: plan.intraOpThreads, intraOpSpinning: cfg.intraOpSpinning };
    this.batcher = new Batcher<BatchItem, BatchOutcome>({
      maxBatch: (key) => this.loaded.get(key)?.maxBatch ?? cfg.maxBatch,
      maxDelayMs: cfg.maxDelayMs,
      maxQueue: cfg.maxQueue,
      maxConcurrent: cfg.workers,
      run: (key, items, info) => this.runBatch(key, items, info),
      eagerWhenNoneReserved: true,
      onDepth: (d) => observer.queueDepth?.(d),
    });
  }

  /**
   * Start the workers, load every model's newest loadable version and warm each up (one run at batch 1
   * and at maxBatch) before resolving. A model whose versions all fail is listed as not ready.
   */
  static async start(input: EngineConfigInput, logger: Logger, observer: EngineObserver = {}): Promise<Engine> {
    const cfg = parseConfig(input);
    const engine = new Engine(cfg, logger.child({ component: 'engine' }), observer);
    engine.pool = await WorkerPool.start({
      size: cfg.workers,
      entry: WORKER_ENTRY,
      workerData: { session: engine.sessionConfig } satisfies InferenceWorkerData,
      logger: engine.logger,
      // A worker gets its next task (typically a decode) while it still runs one, so it never idles
      // waiting for this thread between tasks; batches never queue behind one another in a worker.
      depth: WORKER_INBOX_DEPTH,
      isHeavy: (m) => m.type === 'infer',
      init: (w) => engine.initWorker(w),
    });
    try {
      await engine.reload();
    } catch (e) {
      await engine.pool.close();
      throw e;
    }
    engine.accepting = true;
    const ready = [...engine.state.values()].filter((s) => s.current).map((s) => s.current);
    engine.logger.info({ models: ready, workers: cfg.workers, intraOpThreads: engine.sessionConfig.intraOpThreads, provider: cfg.provider }, 'engine ready');
    return engine;
  }

  ready(): boolean {
    return this.accepting && !this.closed && this.pool.liveCount() > 0 && [...this.state.values()].some((s) => s.current !== undefined);
  }

  models(): ModelInfo[] {
    const out: ModelInfo[] = [];
    for (const s of this.state.values()) {
      const info = this.infoFor(s, s.current ? this.loaded.get(s.current)!.entry.version : undefined);
      if (info) out.push(info);
    }
    return out;
  }

  model(name: string, version?: string): ModelInfo | undefined {
    const s = this.state.get(name);
    if (!s) return undefined;
    if (version !== undefined && !s.versions.includes(version)) return undefined;
    return this.infoFor(s, version ?? (s.current ? this.loaded.get(s.current)!.entry.version : undefined));
  }

  defaultModel(): ModelInfo | undefined {
    const name = this.defaultModelName();
    return name ? this.model(name) : undefined;
  }

  queueDepth(): number {
    return this.batcher.depth();
  }

  private defaultModelName(): string | undefined {
    if (this.cfg.defaultModel) return this.state.has(this.cfg.defaultModel) ? this.cfg.defaultModel : undefined;
    const states = [...this.state.values()];
    return (states.find((s) => s.current) ?? states[0])?.name;
  }

  private infoFor(s: ModelState, version: string | undefined): ModelInfo | undefined {
    const lm = version !== undefined ? this.loaded.get(modelKey(s.name, version)) : undefined;
    if (lm) {
      const info: ModelInfo = {
        name: s.name,
        version: lm.entry.version,
        versions: [...s.versions],
        manifest: lm.entry.manifest,
        executionProvider: lm.provider,
        ready: this.pool.liveCount() > 0,
        loadedAt: lm.loadedAt,
      };
      if (s.error && s.current === lm.entry.key) info.error = s.error;
      return info;
    }
    // Not loaded: a model none of whose versions loads (shown by its newest readable manifest), or an
    // older version that is loaded on its first request.
    const v = version ?? [...s.versions].reverse().find((x) => s.manifests.has(x));
    const manifest = v !== undefined ? s.manifests.get(v) : undefined;
    if (!manifest || v === undefined) return undefined;
    const info: ModelInfo = { name: s.name, version: v, versions: [...s.versions], manifest, executionProvider: null, ready: false, loadedAt: '' };
    if (!s.current) {
      if (s.error) info.error = s.error;
    } else info.error = 'not loaded; loads on its first request';
    return info;
  }

  // ---------------------------------------------------------------- loading

  private loadMsg(lm: { entry: ModelVersionEntry; maxBatch: number }): LoadMsg {
    // cuDNN picks convolution algorithms per input shape on first use (seconds on a GPU), and dynamic
    // batching produces every size from 1 to maxBatch: warm them all before ready. On CPU the first run
    // at a new size is cheap, so the two ends suffice.
    const warmupBatches =
      this.sessionConfig.provider === 'cuda' ? Array.from({ length: lm.maxBatch }, (_, i) => i + 1) : [1, lm.maxBatch];
    return { type: 'load', key: lm.entry.key, onnxPath: lm.entry.onnxPath, manifest: lm.entry.manifest, warmupBatches };
  }

  /** A new (or replacement) worker loads every model currently served before taking requests. */
  private async initWorker(w: PoolWorker): Promise<void> {
    const held = new Set<string>();
    this.workerModels.set(w, held);
    for (const lm of this.loaded.values()) {
      if (lm.retired) continue;
      await w.call<LoadResult>(this.loadMsg(lm));
      held.add(lm.entry.key);
    }
  }

  private batchLimit(manifest: ModelManifest): number {
    const n = manifest.input.shape[0];
    return typeof n === 'number' ? n : this.cfg.maxBatch;
  }

  /** Load (or reload) one version on every worker; on any failure, nothing changes for that key. */
  private async loadVersion(entry: ModelVersionEntry): Promise<LoadedModel> {
    const maxBatch = this.batchLimit(entry.manifest);
    const message = this.loadMsg({ entry, maxBatch });
    const done = new Set<PoolWorker>();
    const results: LoadResult[] = [];
    try {
      // Workers started while this runs are caught by the second pass.
      for (let pass = 0; pass < 3; pass++) {
        const todo = this.pool.members().filter((w) => !done.has(w));
        if (todo.length === 0) break;
        const rs = await Promise.all(todo.map((w) => w.call<LoadResult>(message)));
        todo.forEach((w) => {
          done.add(w);
          this.workerModels.get(w)?.add(entry.key);
        });
        results.push(...rs);
      }
      if (results.length === 0) throw new ModelInvalidError(entry.key, `${entry.key}: no inference worker is running`);
    } catch (e) {
      // Keep a previously loaded session of this key only where the workers still hold it.
      if (!this.loaded.has(entry.key)) {
        await Promise.allSettled([...done].map((w) => w.call({ type: 'unload', key: entry.key })));
      }
      throw e;
    }
    const r = results[0]!;
    if (r.fallbackReason) {
      this.logger.warn({ model: entry.key, requested: 'cuda', deviceId: this.cfg.deviceId, reason: r.fallbackReason }, `CUDA unavailable for ${entry.key}; running on CPU`);
    }
    this.logger.info({ model: entry.key, provider: r.provider, loadMs: Math.round(r.loadMs), warmupMs: Math.round(r.warmupMs), maxBatch }, 'model loaded');
    const fresh = { entry, provider: r.provider, loadedAt: new Date().toISOString(), retired: false, maxBatch };
    // Reloaded in place: keep the same record, so requests still holding it count against it.
    const prev = this.loaded.get(entry.key);
    if (prev) return Object.assign(prev, fresh);
    const lm: LoadedModel = { ...fresh, refs: 0 };
    this.loaded.set(entry.key, lm);
    return lm;
  }

  /** Load a version once even if many requests ask for it at the same time. */
  private ensureLoaded(name: string, version: string): Promise<LoadedModel> {
    const key = modelKey(name, version);
    const have = this.loaded.get(key);
    if (have && !have.retired) return Promise.resolve(have);
    let p = this.loading.get(key);
    if (!p) {
      p = readModelVersion(this.cfg.modelRepository, name, version)
        .then((entry) => this.loadVersion(entry))
        .finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  private retire(key: string): void {
    const lm = this.loaded.get(key);
    if (!lm) return;
    lm.retired = true;
    if (lm.refs === 0) this.unload(key);
  }

  private unload(key: string): void {
    this.loaded.delete(key);
    for (const w of this.pool.members()) this.workerModels.get(w)?.delete(key);
    this.pool.broadcast({ type: 'unload', key }).catch((e) => this.logger.warn({ model: key, err: msg(e) }, 'unload failed'));
  }

  /**
   * Re-scan the repository. For each model, versions newer than the served one are tried newest first;
   * the first that validates and loads becomes the default, otherwise the served one stays. A served
   * version whose files changed is reloaded in place (kept if the new files fail). Models gone from the
   * repository are unloaded once their requests finish.
   */
  reload(): Promise<ReloadResult> {
    const run = this.reloadChain.then(() => this.reloadNow());
    this.reloadChain = run.catch(() => {});
    return run;
  }

  private async reloadNow(): Promise<ReloadResult> {
    const out: ReloadResult = { loaded: [], failed: [], removed: [] };
    const listing = await listRepository(this.cfg.modelRepository);
    for (const [name, versions] of listing) {
      let s = this.state.get(name);
      if (!s) this.state.set(name, (s = { name, versions, manifests: new Map() }));
      s.versions = versions;
      s.manifests = new Map();
      for (const v of versions) {
        const m = await readManifest(this.cfg.modelRepository, name, v).catch(() => undefined);
        if (m) s.manifests.set(v, m);
      }
      const previous = s.current ? this.loaded.get(s.current) : undefined;
      // A served version whose directory is gone cannot stay the default.
      const current = previous && versions.includes(previous.entry.version) ? previous : undefined;
      const newestFirst = [...versions].reverse();
      let chosen: LoadedModel | undefined;
      let firstError: string | undefined;
      for (const v of newestFirst) {
        const key = modelKey(name, v);
        if (current && compareVersions(v, current.entry.version) < 0) break;
        try {
          const entry = await readModelVersion(this.cfg.modelRepository, name, v);
          if (current && key === current.entry.key && entry.manifest.onnx.sha256 === current.entry.manifest.onnx.sha256) {
            chosen = current;
            break;
          }
          const lm = this.loaded.get(key);
          chosen = lm && !lm.retired && lm.entry.manifest.onnx.sha256 === entry.manifest.onnx.sha256 ? lm : await this.loadVersion(entry);
          if (chosen !== lm) out.loaded.push(key);
          break;
        } catch (e) {
          const m = e instanceof ModelInvalidError && e.message.startsWith(key) ? e.message : `${key}: ${msg(e)}`;
          firstError ??= m;
          out.failed.push({ model: key, error: m });
          this.logger.error({ model: key, err: m }, 'model version cannot be served');
        }
      }
      if (!chosen && current) chosen = current;
      s.error = firstError;
      if (s.current && s.current !== chosen?.entry.key) {
        out.removed.push(s.current);
        this.retire(s.current);
      }
      s.current = chosen?.entry.key;
    }
    // Models whose directory disappeared.
    for (const [name, s] of [...this.state]) {
      if (listing.has(name)) continue;
      for (const key of [...this.loaded.keys()].filter((k) => this.loaded.get(k)!.entry.name === name && !this.loaded.get(k)!.retired)) {
        out.removed.push(key);
        this.retire(key);
      }
      this.state.delete(name);
    }
    // Versions loaded on demand whose directories disappeared.
    for (const [key, lm] of [...this.loaded]) {
      const s = this.state.get(lm.entry.name);
      if (s && !s.versions.includes(lm.entry.version) && !lm.retired) {
        out.removed.push(key);
        this.retire(key);
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- requests

  private resolveModel(req: SegmentRequest): { name: string; version?: string } {
    const name = req.model ?? this.defaultModelName();
    if (!name) throw new ModelNotFoundError(req.model ?? '(default)', undefined, 'the repository holds no model');
    const s = this.state.get(name);
    if (!s) throw new ModelNotFoundError(name, req.version);
    if (req.version !== undefined) {
      if (!s.versions.includes(req.version)) throw new ModelNotFoundError(name, req.version, `available versions: ${s.versions.join(', ')}`);
      return { name, version: req.version };
    }
    if (!s.current) throw new NotReadyError(`model ${name} is not ready${s.error ? `: ${s.error}` : ''}`);
    return { name };
  }

  private validate(req: SegmentRequest, manifest: ModelManifest): { threshold: number; minArea: number; tta: boolean } {
    if (!(req.dicom instanceof Uint8Array)) throw new InvalidRequestError('dicom', 'dicom must be a Uint8Array of DICOM bytes');
    const threshold = req.threshold ?? manifest.postprocessing.threshold;
    if (typeof threshold !== 'number' || !(threshold > 0 && threshold < 1)) {
      throw new InvalidRequestError('threshold', `threshold must be a number in (0, 1), got ${String(req.threshold)}`);
    }
    const minArea = req.minArea ?? manifest.postprocessing.minArea;
    if (!Number.isInteger(minArea) || minArea < 0) throw new InvalidRequestError('minArea', `minArea must be an integer >= 0, got ${String(req.minArea)}`);
    if (req.frame !== undefined && (!Number.isInteger(req.frame) || req.frame < 0)) {
      throw new InvalidRequestError('frame', `frame must be an integer >= 0, got ${String(req.frame)}`);
    }
    if (req.tta !== undefined && typeof req.tta !== 'boolean') throw new InvalidRequestError('tta', 'tta must be a boolean');
    if (req.preview !== undefined) {
      const side = req.preview?.maxSide;
      if (!Number.isInteger(side) || side < 1 || side > MAX_PREVIEW_SIDE) {
        throw new InvalidRequestError('preview', `preview.maxSide must be an integer in 1..${MAX_PREVIEW_SIDE}, got ${String(side)}`);
      }
    }
    return { threshold, minArea, tta: req.tta ?? false };
  }

  async segment(req: SegmentRequest): Promise<SegmentResult> {
    if (!this.accepting || this.closed) throw new NotReadyError(this.closed ? 'engine is closed' : 'engine is draining; not accepting requests');
    const t0 = performance.now();
    const ref = this.resolveModel(req);
    const lm = ref.version === undefined ? this.loaded.get(this.state.get(ref.name)!.current!)! : undefined;
    // Cheap checks before admission (on-demand versions are checked once loaded).
    if (lm) this.validate(req, lm.entry.manifest);
    const p = this.segmentAdmitted(req, ref, lm, t0);
    this.inflight.add(p);
    const forget = () => this.inflight.delete(p);
    p.then(forget, forget);
    return p;
  }

  private async segmentAdmitted(req: SegmentRequest, ref: { name: string; version?: string }, known: LoadedModel | undefined, t0: number): Promise<SegmentResult> {
    let lm = known;
    if (!lm) {
      try {
        lm = await this.ensureLoaded(ref.name, ref.version!);
      } catch (e) {
        throw new NotReadyError(`model ${modelKey(ref.name, ref.version!)} cannot be served: ${msg(e)}`);
      }
    }
    const { threshold, minArea, tta } = this.validate(req, lm.entry.manifest);
    const images = tta ? 2 : 1;
    const reservation: Reservation = this.batcher.reserve(images);
    lm.refs++;
    try {
      const bytes = req.transferDicom && req.dicom.byteOffset === 0 && req.dicom.byteLength === req.dicom.buffer.byteLength && req.dicom.buffer instanceof ArrayBuffer ? req.dicom : copyBytes(req.dicom);
      const prepMsg: PrepareMsg = { type: 'prepare', dicom: bytes, maxPixels: this.cfg.maxPixels, spec: lm.entry.manifest.preprocessing, tta };
      if (req.frame !== undefined) prepMsg.frame = req.frame;
      if (req.preview) prepMsg.preview = { maxSide: req.preview.maxSide };
      const prep = await this.pool.run<PrepareResult>(prepMsg, [bytes.buffer as ArrayBuffer]);
      this.observer.decode?.(prep.decodeMs / 1000);
      this.observer.preprocess?.(prep.preprocessMs / 1000);
      const enqueuedAt = epochMs();
      const outcome = await this.batcher.submit(
        lm.entry.key,
        { entry: { tensors: prep.tensors, rows: prep.image.rows, cols: prep.image.columns, threshold, minArea } },
        reservation,
        images,
      );
      return this.assemble(lm, prep.image, prep, outcome, enqueuedAt, t0);
    } finally {
      reservation.release();
      lm.refs--;
      if (lm.retired && lm.refs === 0 && this.loaded.get(lm.entry.key) === lm) this.unload(lm.entry.key);
    }
  }

  private assemble(lm: LoadedModel, image: ImageMeta, prep: PrepareResult, o: BatchOutcome, enqueuedAt: number, t0: number): SegmentResult {
    const result: SegmentResult = {
      model: { name: lm.entry.name, version: lm.entry.version, executionProvider: o.provider },
      image,
      masks: o.result.masks.map((m) => ({
        label: m.label,
        mask: createMask(m.rows, m.cols, m.data),
        area: m.area,
        bbox: m.bbox,
        empty: m.empty,
        threshold: m.threshold,
        minArea: m.minArea,
      })),
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

  private async runBatch(key: string, items: BatchItem[], info: BatchInfo): Promise<BatchOutcome[]> {
    const lm = this.loaded.get(key);
    const name = lm?.entry.name ?? key.split(':')[0]!;
    this.observer.batch?.(name, info.images);
    const message: InferMsg = { type: 'infer', key, entries: items.map((i) => i.entry) };
    const transfer = items.flatMap((i) => i.entry.tensors.map((t) => t.buffer as ArrayBuffer));
    const r = await this.pool.run<InferResult>(message, transfer);
    this.observer.inference?.(name, r.provider, r.runMs / 1000);
    return r.entries.map((result) => ({ result, startedAt: r.startedAt, runMs: r.runMs, provider: r.provider }));
  }

  // ---------------------------------------------------------------- shutdown

  /** Stop accepting, finish everything queued and in flight, then resolve. */
  async drain(): Promise<void> {
    this.accepting = false;
    this.batcher.flush();
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    await this.batcher.idle();
  }

  /** Drain, then stop the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.drain();
    this.closed = true;
    await this.pool.close();
  }
}
