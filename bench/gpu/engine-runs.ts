/**
 * The service path (core/engine Engine.segment: decode, preprocess, dynamic batching, inference in
 * worker threads, postprocess) under load on one provider, and the CUDA -> CPU fallback as the
 * service sees it (a CUDA device that does not exist must give a CPU session and one clear warning).
 */
import pino from 'pino';
import { Engine, planThreads, type EngineConfigInput } from '../../core/engine/index.ts';
import type { BenchProvider } from './inference.ts';
import { mean, oneLine, percentile } from './measure.ts';

export interface EngineHandle {
  engine: Engine;
  /** Images per dispatched batch, appended by the engine's observer. */
  batches: number[];
  /** Warn/error log records (JSON lines) the engine wrote. */
  logs: string[];
  startMs: number;
  /** The thread plan the engine runs with (resolved once, in startEngine, and handed to it). */
  plan: ReturnType<typeof planThreads>;
}

export interface EngineOptions {
  repo: string;
  provider: BenchProvider;
  deviceId: number;
  /** 0 = the engine's automatic plan (planThreads). */
  workers: number;
  /** Decode/preprocess-only workers; undefined = the plan's choice (on cuda: the cores the sessions leave). */
  prepareWorkers?: number;
  maxBatch: number;
  inFlight: number;
  maxDelayMs: number;
}

/** One engine configuration of `--engine-workers`: `W` (W inference workers) or `W+P` (and P prepare workers). */
export function parseWorkerSpec(spec: string): { workers: number; prepareWorkers?: number } {
  const m = /^(\d+)(?:\+(\d+))?$/.exec(spec.trim());
  if (!m) throw new Error(`--engine-workers: '${spec}' is not W or W+P (inference workers, plus prepare workers)`);
  return m[2] === undefined ? { workers: Number(m[1]) } : { workers: Number(m[1]), prepareWorkers: Number(m[2]) };
}

export async function startEngine(o: EngineOptions): Promise<EngineHandle> {
  const batches: number[] = [];
  const logs: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void logs.push(line) });
  // The engine's own rule, applied here so the report states the figures the engine ran with.
  const plan = planThreads({ workers: o.workers, intraOpThreads: 0, prepareWorkers: o.prepareWorkers, maxBatch: o.maxBatch, provider: o.provider });
  const cfg: EngineConfigInput = {
    modelRepository: o.repo,
    provider: o.provider,
    deviceId: o.deviceId,
    workers: plan.workers,
    intraOpThreads: plan.intraOpThreads,
    prepareWorkers: plan.prepareWorkers,
    maxBatch: plan.maxBatch,
    maxDelayMs: o.maxDelayMs,
    maxQueue: Math.max(4 * o.inFlight, 64),
    maxPixels: 64 << 20,
  };
  const t0 = performance.now();
  const engine = await Engine.start(cfg, logger, { batch: (_m, n) => void batches.push(n) });
  return { engine, batches, logs, startMs: performance.now() - t0, plan };
}

export interface EngineThroughput {
  requested: BenchProvider;
  /** What the engine actually serves the model on (differs from `requested` after a fallback). */
  served: string;
  size: number;
  /** Size of the DICOM sent (the model's size, or a radiograph's that the engine resizes). */
  inputSize: number;
  workers: number;
  intraOpThreads: number;
  prepareWorkers: number;
  maxBatch: number;
  inFlight: number;
  startMs: number;
  requests: number;
  imagesPerSec: number;
  meanBatch: number;
  p50Ms: number;
  p95Ms: number;
  /**
   * The batch's session.run as each request saw it (ms): p50 against p95 tells a few slow runs (cold
   * shapes, stalls) from runs that are all slow (contention between sessions).
   */
  inferP50Ms: number;
  inferP95Ms: number;
  /** Mean per-request stage times (ms): where the time goes when the service falls short of raw ORT. */
  stagesMs: { decode: number; preprocess: number; queue: number; inference: number; postprocess: number };
}

/**
 * `inFlight` concurrent clients each send the same DICOM back to back: `warmupSeconds` untimed (every
 * batch shape the batcher forms gets its first, slow run there), then `seconds` timed.
 */
export async function measureEngine(h: EngineHandle, o: EngineOptions, model: string, size: number, dicom: Uint8Array, seconds: number, warmupSeconds: number, inputSize = size): Promise<EngineThroughput> {
  const lane = async (until: number, record?: (r: Awaited<ReturnType<Engine['segment']>>) => void) => {
    while (performance.now() < until) {
      const r = await h.engine.segment({ dicom, model });
      record?.(r);
    }
  };
  let until = performance.now() + warmupSeconds * 1000;
  await Promise.all(Array.from({ length: o.inFlight }, () => lane(until)));
  h.batches.length = 0;
  const results: Array<Awaited<ReturnType<Engine['segment']>>> = [];
  const t0 = performance.now();
  until = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: o.inFlight }, () => lane(until, (r) => void results.push(r))));
  const ms = performance.now() - t0;
  const served = h.engine.model(model)?.executionProvider ?? 'not ready';
  const totals = results.map((r) => r.timings.totalMs);
  const stage = (k: keyof (typeof results)[number]['timings']) => mean(results.map((r) => r.timings[k]));
  const { plan } = h;
  return {
    requested: o.provider,
    served,
    size,
    inputSize,
    workers: plan.workers,
    intraOpThreads: plan.intraOpThreads,
    prepareWorkers: plan.prepareWorkers,
    maxBatch: plan.maxBatch,
    inFlight: o.inFlight,
    startMs: h.startMs,
    requests: results.length,
    imagesPerSec: (results.length * 1000) / ms,
    meanBatch: mean(h.batches),
    p50Ms: percentile(totals, 50),
    p95Ms: percentile(totals, 95),
    inferP50Ms: percentile(results.map((r) => r.timings.inferenceMs), 50),
    inferP95Ms: percentile(results.map((r) => r.timings.inferenceMs), 95),
    stagesMs: { decode: stage('decodeMs'), preprocess: stage('preprocessMs'), queue: stage('queueMs'), inference: stage('inferenceMs'), postprocess: stage('postprocessMs') },
  };
}

/** Segment each DICOM once (sequentially) and return the first label's mask bytes. */
export async function segmentAll(h: EngineHandle, model: string, dicoms: Uint8Array[]): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const dicom of dicoms) out.push((await h.engine.segment({ dicom, model })).masks[0]!.mask.data);
  return out;
}

export interface FallbackResult {
  requestedDeviceId: number;
  served: string;
  /** The engine's warning: message and ORT's reason. */
  warning: string;
  segmentOk: boolean;
  error?: string;
  pass: boolean;
}

/** Ask the engine for CUDA on a device id that does not exist: the model must be served on CPU, with a warning. */
export async function fallbackCheck(repo: string, model: string, dicom: Uint8Array, badDeviceId: number): Promise<FallbackResult> {
  const o: EngineOptions = { repo, provider: 'cuda', deviceId: badDeviceId, workers: 1, maxBatch: 1, inFlight: 1, maxDelayMs: 0 };
  let h: EngineHandle | undefined;
  try {
    h = await startEngine(o);
    const served = h.engine.model(model)?.executionProvider ?? 'not ready';
    const warnings = h.logs
      .map((l) => JSON.parse(l) as { level: number; msg?: string; reason?: string })
      .filter((r) => r.level >= 40 && /CUDA/i.test(`${r.msg} ${r.reason ?? ''}`))
      .map((r) => `${r.msg}${r.reason ? ` (${r.reason})` : ''}`);
    let segmentOk = false;
    let error: string | undefined;
    try {
      const r = await h.engine.segment({ dicom, model });
      segmentOk = r.model.executionProvider === 'cpu' && r.masks.length > 0;
    } catch (e) {
      error = oneLine(e);
    }
    const warning = warnings[0] ?? '(no warning logged)';
    const res: FallbackResult = { requestedDeviceId: badDeviceId, served, warning, segmentOk, pass: served === 'cpu' && warnings.length > 0 && segmentOk };
    if (error) res.error = error;
    return res;
  } catch (e) {
    return { requestedDeviceId: badDeviceId, served: 'engine did not start', warning: '', segmentOk: false, error: oneLine(e), pass: false };
  } finally {
    await h?.engine.close();
  }
}
