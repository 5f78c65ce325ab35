/**
 * One epoch: Adam steps over the shuffled training fold (`fitEpoch`), then Dice on the validation
 * fold (`evaluate`).
 */
import type { PreprocessSpec } from '../../core/preprocess/spec.ts';
import type { TrainConfig } from '../config.ts';
import type { BatchLoader } from '../data/loader.ts';
import { LOSS_NAMES, lossValues, type LossValues } from '../model/loss.ts';
import type { TrainingSession } from '../session/types.ts';
import { validate, type ValidationResult } from '../validate.ts';
import type { TrainObserver } from './types.ts';

export interface EpochFit {
  /** Mean total loss over the epoch's images. */
  loss: number;
  /** Mean of each loss term. */
  losses: LossValues;
  images: number;
  steps: number;
  seconds: number;
}

/** `epoch` is 0-based (it seeds the shuffle and augmentation draws); the observer sees it 1-based. */
export async function fitEpoch(session: TrainingSession, loader: BatchLoader, epoch: number, lr: number, epochs: number, obs: TrainObserver): Promise<EpochFit> {
  const e0 = performance.now();
  const batches = loader.batchesPerEpoch();
  obs.epochStart?.(epoch + 1, epochs, batches, lr);
  let total = 0;
  const sums = lossValues(() => 0);
  let seen = 0;
  let steps = 0;
  for await (const batch of loader.epoch(epoch)) {
    const r = await session.step(batch.images, batch.masks, batch.n, lr);
    if (!Number.isFinite(r.loss)) throw new Error(`training diverged: loss ${r.loss} at epoch ${epoch + 1}, batch ${steps + 1}; lower --lr`);
    total += r.loss * batch.n;
    for (const n of LOSS_NAMES) sums[n] += r[n] * batch.n;
    seen += batch.n;
    steps++;
    if (obs.batch) {
      obs.batch({ epoch: epoch + 1, batch: steps, batches, loss: total / seen, losses: lossValues((n) => sums[n] / seen), imagesPerSecond: seen / ((performance.now() - e0) / 1000), lr });
    }
  }
  return { loss: total / seen, losses: lossValues((n) => sums[n] / seen), images: seen, steps, seconds: (performance.now() - e0) / 1000 };
}

/** Validation Dice with the run's threshold and min-area gate; `original` adds the original-resolution figure. */
export function evaluate(session: TrainingSession, loader: BatchLoader, spec: PreprocessSpec, cfg: TrainConfig, obs: TrainObserver, original: boolean): Promise<ValidationResult> {
  return validate(session, loader, spec, { threshold: cfg.threshold, minArea: cfg.minArea }, { original, onBatch: (d, t) => obs.validationProgress?.(d, t) });
}
