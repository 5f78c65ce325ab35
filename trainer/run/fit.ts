/**
 * One epoch: Adam steps over the shuffled training fold (`fitEpoch`), then Dice on the validation
 * fold (`evaluate`).
 */
import type { PreprocessSpec } from '../../core/preprocess/spec.ts';
import { isMulticlass, type TrainConfig } from '../config.ts';
import type { BatchLoader } from '../data/loader.ts';
import { termValues, type LossSet, type TermValues } from '../model/loss-set.ts';
import type { TrainingSession } from '../session/types.ts';
import { validate, type SoftmaxLabels, type ValidationResult } from '../validate.ts';
import type { TrainObserver } from './types.ts';

export interface EpochFit {
  /** Mean total loss over the epoch's images. */
  loss: number;
  /** Mean of each loss term. */
  losses: TermValues;
  images: number;
  steps: number;
  seconds: number;
}

/** `epoch` is 0-based (it seeds the shuffle and augmentation draws); the observer sees it 1-based. */
export async function fitEpoch(session: TrainingSession, loader: BatchLoader, epoch: number, lr: number, epochs: number, obs: TrainObserver, set: LossSet): Promise<EpochFit> {
  const e0 = performance.now();
  const batches = loader.batchesPerEpoch();
  obs.epochStart?.(epoch + 1, epochs, batches, lr);
  let total = 0;
  const sums = termValues(set, () => 0);
  let seen = 0;
  let steps = 0;
  for await (const batch of loader.epoch(epoch)) {
    const r = await session.step(batch.images, batch.masks, batch.n, lr);
    if (!Number.isFinite(r.loss)) throw new Error(`training diverged: loss ${r.loss} at epoch ${epoch + 1}, batch ${steps + 1}; lower --lr`);
    total += r.loss * batch.n;
    for (const n of set.names) sums[n]! += r[n]! * batch.n;
    seen += batch.n;
    steps++;
    if (obs.batch) {
      obs.batch({ epoch: epoch + 1, batch: steps, batches, loss: total / seen, losses: termValues(set, (n) => sums[n]! / seen), imagesPerSecond: seen / ((performance.now() - e0) / 1000), lr });
    }
  }
  return { loss: total / seen, losses: termValues(set, (n) => sums[n]! / seen), images: seen, steps, seconds: (performance.now() - e0) / 1000 };
}

/** Validation Dice with the run's threshold and min-area gate; `original` adds the original-resolution figure. */
export function evaluate(session: TrainingSession, loader: BatchLoader, spec: PreprocessSpec, cfg: TrainConfig, obs: TrainObserver, original: boolean): Promise<ValidationResult> {
  return validate(session, loader, spec, { threshold: cfg.threshold, minArea: cfg.minArea }, { original, onBatch: (d, t) => obs.validationProgress?.(d, t), ...softmaxOf(cfg) });
}

/** A multi-class run's softmax labels for validation (background = class 0), or nothing. */
export function softmaxOf(cfg: TrainConfig): { softmax?: SoftmaxLabels } {
  return isMulticlass(cfg) ? { softmax: { labels: cfg.labels, background: 0 } } : {};
}
