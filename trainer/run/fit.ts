/**
 * One epoch: Adam steps over the shuffled training fold (`fitEpoch`), then Dice and loss on the
 * validation fold (`evaluate`).
 */
import type { PreprocessSpec } from '../../core/preprocess/spec.ts';
import { isMulticlass, type TrainConfig } from '../config.ts';
import type { BatchLoader } from '../data/loader.ts';
import { LossMeans, type LossSet, type TermValues } from '../model/loss-set.ts';
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
  const means = new LossMeans(set);
  let steps = 0;
  for await (const batch of loader.epoch(epoch)) {
    const r = await session.step(batch.images, batch.masks, batch.n, lr);
    if (!Number.isFinite(r.loss)) throw new Error(`training diverged: loss ${r.loss} at epoch ${epoch + 1}, batch ${steps + 1}; lower --lr`);
    means.add(r, batch.n);
    steps++;
    if (obs.batch) {
      obs.batch({ epoch: epoch + 1, batch: steps, batches, loss: means.loss, losses: means.losses, imagesPerSecond: means.images / ((performance.now() - e0) / 1000), lr });
    }
  }
  return { loss: means.loss, losses: means.losses, images: means.images, steps, seconds: (performance.now() - e0) / 1000 };
}

/**
 * Validation Dice with the run's threshold and min-area gate (`original` adds the original-resolution
 * figure) and the validation loss, from the same predictions.
 */
export function evaluate(session: TrainingSession, loader: BatchLoader, spec: PreprocessSpec, cfg: TrainConfig, obs: TrainObserver, original: boolean): Promise<ValidationResult> {
  return validate(session, loader, spec, { threshold: cfg.threshold, minArea: cfg.minArea }, { original, onBatch: (d, t) => obs.validationProgress?.(d, t), ...softmaxOf(cfg) });
}

/** A multi-class run's softmax labels for validation (background = class 0), or nothing. */
export function softmaxOf(cfg: TrainConfig): { softmax?: SoftmaxLabels } {
  return isMulticlass(cfg) ? { softmax: { labels: cfg.labels, background: 0 } } : {};
}
