/**
 * The one place that opens onnxruntime sessions: the engine's workers, the trainer's step and predict
 * sessions and the export parity check all come here, so execution-provider choice, the CUDA -> CPU
 * fallback with its diagnosis, and the thread options are the same everywhere.
 *
 * ORT throws when a CUDA session cannot be created (missing provider library, no device, wrong
 * deviceId); there is no silent fallback inside ORT, so the fallback to CPU happens here and its
 * reason is returned for one clear warning.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';

export type Provider = 'cpu' | 'cuda';

export interface SessionConfig {
  provider: Provider;
  /** CUDA device ordinal; default 0. */
  deviceId?: number;
  /** ORT intra-op threads; 0 or absent = ORT's own choice (one per physical core). */
  intraOpThreads?: number;
  /**
   * Let idle intra-op threads spin (busy-wait) for the next parallel section instead of sleeping.
   * ORT's default is on; off frees the core for the worker's own JS (decode, postprocess) and for
   * other threads. Only matters with intraOpThreads > 1. Default here: off.
   */
  intraOpSpinning?: boolean;
  /** Write an ORT profile (chrome trace) with this file-name prefix. */
  profilePrefix?: string;
}

export interface OpenedSession {
  session: ort.InferenceSession;
  /** The provider the session actually runs on. */
  provider: Provider;
  /** Set when `cuda` was asked for and the session fell back to CPU: ORT's reason and its cause, one line. */
  fallbackReason?: string;
}

let logLevelSet = false;
/**
 * ORT's native logger prints every provider-load failure to stderr on its own; every failure also
 * surfaces as an exception we log structurally, so the native logger is kept to fatal messages.
 */
function quietNativeLog(): void {
  if (logLevelSet) return;
  ort.env.logLevel = 'fatal';
  logLevelSet = true;
}

function baseOptions(cfg: SessionConfig): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    ...(cfg.intraOpThreads && cfg.intraOpThreads > 0 ? { intraOpNumThreads: cfg.intraOpThreads } : {}),
    // One graph runs at a time per session; inter-op threads would only add contention.
    interOpNumThreads: 1,
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: cfg.intraOpSpinning ? '1' : '0' } } },
    ...(cfg.profilePrefix ? { enableProfiling: true, profileFilePrefix: cfg.profilePrefix } : {}),
  };
}

/** ORT's create() has one overload per source type; this picks the one for `model`. */
function create(model: string | Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  return typeof model === 'string' ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options);
}

function oneLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!.trim();
}

/**
 * Open `model` (an .onnx path or the model's bytes) on the configured provider; for `cuda`, fall back
 * to CPU when ORT refuses (the reason is returned, not logged: the caller logs once per model, not
 * once per worker). Throws only when no provider can open the model.
 *
 *   const { session } = await openSession(bytes, { provider: 'cpu', intraOpThreads: 1 });
 */
export async function openSession(model: string | Uint8Array, cfg: SessionConfig): Promise<OpenedSession> {
  quietNativeLog();
  const deviceId = cfg.deviceId ?? 0;
  let fallbackReason: string | undefined;
  if (cfg.provider === 'cuda') {
    try {
      const session = await create(model, { ...baseOptions(cfg), executionProviders: [{ name: 'cuda', deviceId }] });
      return { session, provider: 'cuda' };
    } catch (e) {
      const diagnosis = diagnoseCudaProvider();
      fallbackReason = `CUDA session on device ${deviceId} could not be created: ${oneLine(e)}${diagnosis ? ` (${diagnosis})` : ''}`;
    }
  }
  const session = await create(model, { ...baseOptions(cfg), executionProviders: ['cpu'] });
  return fallbackReason ? { session, provider: 'cpu', fallbackReason } : { session, provider: 'cpu' };
}

/**
 * ORT's exception for a provider that cannot load says only "Failed to load shared library"; the
 * reason (the EP was never installed, or a CUDA/cuDNN library it links is missing) goes to the native
 * log we keep quiet. Find it here so the one fallback warning tells the operator what to install.
 */
export function diagnoseCudaProvider(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const binDir = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', 'linux', process.arch);
    const provider = join(binDir, 'libonnxruntime_providers_cuda.so');
    if (!existsSync(provider)) {
      return `the CUDA execution provider is not installed: reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci (see README, GPU)`;
    }
    const missing = execFileSync('ldd', [provider], { encoding: 'utf8', timeout: 5000 })
      .split('\n')
      .filter((l) => l.includes('not found'))
      .map((l) => l.trim().split(/\s+/)[0]);
    return missing.length > 0 ? `libraries not found by the loader: ${missing.join(', ')}` : undefined;
  } catch {
    return undefined;
  }
}

export interface ThreadPlan {
  /** Inference workers (each holds one ORT session per model). */
  workers: number;
  intraOpThreads: number;
  /**
   * Workers that only decode and preprocess (no sessions); 0 = the inference workers do it between
   * batches.
   */
  prepareWorkers: number;
  /** Most images per session.run. */
  maxBatch: number;
  /** Why the requested figures were changed, if they were. */
  adjusted?: string;
}

export interface ThreadRequest {
  /** 0 = choose from the cores and the provider. */
  workers: number;
  /** 0 = choose (the cores shared evenly on CPU; 1 on CUDA). */
  intraOpThreads: number;
  /** undefined = choose (0 on CPU; the cores the inference workers leave on CUDA). */
  prepareWorkers?: number | undefined;
  /** 0 or undefined = choose (4 on CPU, 8 on CUDA). */
  maxBatch?: number | undefined;
  provider?: Provider;
}

/**
 * Most inference workers the automatic CPU plan starts: every one holds its own sessions (weights
 * and an activation arena), so memory grows with them; past this, cores go to intra-op threads.
 */
export const AUTO_MAX_CPU_WORKERS = 8;

/**
 * The worker/thread plan. Automatic on CPU: one inference worker per core up to
 * AUTO_MAX_CPU_WORKERS, the cores shared evenly as intra-op threads, no separate decode workers.
 * Several single-threaded sessions beat one multi-threaded session for a UNet of this size (measured
 * on 2 cores, batch 8: 2 sessions x 1 thread 52 images/s, 1 session x 2 threads 29; bench/realpath),
 * and with every core holding an inference lane a separate decode pool would only oversubscribe
 * them: the workers decode between batches. Automatic on CUDA: 2 inference workers (1 on fewer than
 * 4 cores), so one batch's host work overlaps another's kernels, 1 intra-op thread (CPU-fallback
 * ops only), and every other core a decode/preprocess worker, since the GPU leaves the CPU stages
 * as the whole bill. Batches: at most 4 images on CPU (a batch of 8 on one core runs ~0.3 s for the
 * default UNet, and every request that arrives meanwhile waits it out: with 8 the slowest answers
 * were 3.2x the median, with 4 1.5x, at the same throughput within 4 %; bench/realpath), 8 on CUDA.
 * Explicit figures are kept, except that workers x intra-op threads never exceed the cores (ORT's
 * threads spin: oversubscription costs more than it gains).
 */
export function planThreads(req: ThreadRequest, cores = availableParallelism()): ThreadPlan {
  const cuda = req.provider === 'cuda';
  const auto = !req.workers || req.workers < 1;
  const w = auto ? (cuda ? (cores >= 4 ? 2 : 1) : Math.min(cores, AUTO_MAX_CPU_WORKERS)) : Math.floor(req.workers);
  const even = Math.max(1, Math.floor(cores / w));
  const prepareWorkers = req.prepareWorkers ?? (cuda ? Math.max(1, cores - w) : 0);
  const maxBatch = req.maxBatch && req.maxBatch >= 1 ? Math.floor(req.maxBatch) : cuda ? 8 : 4;
  if (!req.intraOpThreads || req.intraOpThreads < 1) return { workers: w, intraOpThreads: cuda ? 1 : even, prepareWorkers, maxBatch };
  const t = Math.floor(req.intraOpThreads);
  if (w * t <= cores) return { workers: w, intraOpThreads: t, prepareWorkers, maxBatch };
  return {
    workers: w,
    intraOpThreads: even,
    prepareWorkers,
    maxBatch,
    adjusted: `workers (${w}) x intraOpThreads (${t}) exceeds ${cores} cores; using ${even} intra-op thread(s) per worker`,
  };
}
