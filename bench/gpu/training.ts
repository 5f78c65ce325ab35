/**
 * The trainer's step (forward + ComboLoss + backward + Adam as one onnxruntime run, state fed and
 * fetched as CPU tensors every step) timed on a provider, and where ORT placed the training graph's nodes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { chestDicom } from '../../synth/index.ts';
import { createTrainingSession, type LossWeights, type UNetConfig } from '../../trainer/session/training-session.ts';
import { placementFromProfile, readProfile, type BenchProvider, type ProviderShare } from './inference.ts';
import { mean, oneLine, percentile } from './measure.ts';

export interface TrainingBatch {
  images: Float32Array;
  masks: Float32Array;
}

/** `batch` synthetic chest images (8-bit pixels scaled to [0, 1]) with their lesion masks. */
export async function trainingBatch(size: number, batch: number): Promise<TrainingBatch> {
  const plane = size * size;
  const images = new Float32Array(batch * plane);
  const masks = new Float32Array(batch * plane);
  for (let i = 0; i < batch; i++) {
    const c = await chestDicom(100 + i, { size, lesions: 1 });
    for (let k = 0; k < plane; k++) {
      images[i * plane + k] = c.pixels[k]! / 255;
      masks[i * plane + k] = c.mask.data[k]!;
    }
  }
  return { images, masks };
}

export interface TrainingOptions {
  provider: BenchProvider;
  deviceId: number;
  unet: UNetConfig;
  loss: LossWeights;
  lr: number;
  size: number;
  batch: number;
  steps: number;
  /** Stop timing after this many seconds even if fewer than `steps` ran (a slow provider must not eat the run). */
  maxSeconds: number;
}

export interface TrainingResult {
  requested: BenchProvider;
  /** What the trainer actually runs on (it falls back to CPU, with a warning, when CUDA is refused). */
  executionProvider: string;
  fallbackWarning?: string;
  size: number;
  batch: number;
  parameters: number;
  createMs: number;
  /** First step: allocation and, on CUDA, cuDNN's algorithm search for every convolution shape. */
  firstStepMs: number;
  steps: number;
  stepMsMedian: number;
  stepMsMean: number;
  stepMsP90: number;
  imagesPerSec: number;
  lossFirst: number;
  lossLast: number;
  error?: string;
}

export async function timeTraining(o: TrainingOptions, data: TrainingBatch): Promise<TrainingResult> {
  const logs: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (l: string) => void logs.push(l) });
  const base = { requested: o.provider, size: o.size, batch: o.batch, steps: 0 };
  const t0 = performance.now();
  let s;
  try {
    s = await createTrainingSession({
      unet: o.unet,
      height: o.size,
      width: o.size,
      loss: o.loss,
      device: o.provider,
      deviceId: o.deviceId,
      seed: 1,
      intraOpThreads: availableParallelism(),
      logger,
    });
  } catch (e) {
    return { ...base, executionProvider: 'none', parameters: 0, createMs: performance.now() - t0, firstStepMs: NaN, stepMsMedian: NaN, stepMsMean: NaN, stepMsP90: NaN, imagesPerSec: NaN, lossFirst: NaN, lossLast: NaN, error: oneLine(e) };
  }
  const createMs = performance.now() - t0;
  try {
    let t = performance.now();
    const first = await s.step(data.images, data.masks, o.batch, o.lr);
    const firstStepMs = performance.now() - t;
    const times: number[] = [];
    let last = first;
    const deadline = performance.now() + o.maxSeconds * 1000;
    for (let i = 0; i < o.steps && performance.now() < deadline; i++) {
      t = performance.now();
      last = await s.step(data.images, data.masks, o.batch, o.lr);
      times.push(performance.now() - t);
    }
    const res: TrainingResult = {
      ...base,
      executionProvider: s.executionProvider,
      parameters: s.parameterCount,
      createMs,
      firstStepMs,
      steps: times.length,
      stepMsMedian: percentile(times, 50),
      stepMsMean: mean(times),
      stepMsP90: percentile(times, 90),
      imagesPerSec: (o.batch * 1000) / mean(times),
      lossFirst: first.loss,
      lossLast: last.loss,
    };
    const warning = logs.map((l) => JSON.parse(l) as { msg?: string; err?: string }).find((r) => /CUDA/i.test(r.msg ?? ''));
    if (warning) res.fallbackWarning = `${warning.msg}${warning.err ? `: ${oneLine(warning.err)}` : ''}`;
    return res;
  } finally {
    await s.release();
  }
}

/**
 * Node placement of the training graph: a separate session with ORT profiling (the trainer writes the
 * profile into the working directory, so this runs inside a temporary one), two steps.
 */
export async function trainingPlacement(o: TrainingOptions, data: TrainingBatch): Promise<ProviderShare[]> {
  const dir = await mkdtemp(join(tmpdir(), 'gpu-bench-train-profile-'));
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    const s = await createTrainingSession({
      unet: o.unet,
      height: o.size,
      width: o.size,
      loss: o.loss,
      device: o.provider,
      deviceId: o.deviceId,
      seed: 1,
      intraOpThreads: availableParallelism(),
      logger: pino({ level: 'error' }),
      enableProfiling: true,
    });
    try {
      for (let i = 0; i < 2; i++) await s.step(data.images, data.masks, o.batch, o.lr);
    } finally {
      await s.release();
    }
    return placementFromProfile(await readProfile(dir, 'unet-train-step'));
  } finally {
    process.chdir(cwd);
    await rm(dir, { recursive: true, force: true });
  }
}
