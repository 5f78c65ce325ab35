/**
 * Validation: per-image Dice (Kaggle convention, empty/empty = 1) averaged over the fold, at model
 * resolution (probability > threshold against the model-resolution mask) and at original
 * resolution through core/engine's `probabilitiesToMasks`, the service's own path from
 * probabilities to a mask (bilinear resampling to the original grid, threshold, min-area gate).
 */
import { createMask, maskArea, type Mask } from '../core/mask.ts';
import { dice } from '../core/metrics/index.ts';
import { probabilitiesToMasks } from '../core/engine/postprocess.ts';
import type { PreprocessSpec } from '../core/preprocess/spec.ts';
import type { Batch, BatchLoader } from './data/loader.ts';
import type { TrainingSession } from './session/types.ts';

export interface Postprocessing {
  threshold: number;
  minArea: number;
}

export interface ImageScore {
  id: string;
  hasMask: boolean;
  dice: number;
  diceOriginal?: number;
  /** Foreground pixels at model resolution: predicted (after the gate) and true. */
  predictedArea: number;
  truthArea: number;
}

export interface ValidationResult {
  dice: number;
  /** null when original-resolution scoring was skipped. */
  diceOriginal: number | null;
  images: ImageScore[];
  seconds: number;
}

export function thresholdMask(prob: Float32Array, rows: number, cols: number, threshold: number): Mask {
  const data = new Uint8Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = prob[i]! > threshold ? 1 : 0;
  return createMask(rows, cols, data);
}

/** The first class's H*W plane of sample k in an N*classes*H*W array. */
function plane(arr: Float32Array, k: number, classes: number, hw: number): Float32Array {
  return arr.subarray(k * classes * hw, k * classes * hw + hw);
}

export async function validate(
  session: TrainingSession,
  loader: BatchLoader,
  spec: PreprocessSpec,
  post: Postprocessing,
  o: { original: boolean; onBatch?: (done: number, total: number) => void; onPredictions?: (b: Batch, probs: Float32Array) => void },
): Promise<ValidationResult> {
  const t0 = performance.now();
  const images: ImageScore[] = [];
  const total = loader.batchesPerEpoch();
  let done = 0;
  for await (const b of loader.epoch(0)) {
    const probs = await session.predict(b.images, b.n);
    const { height: h, width: w } = spec.size;
    const hw = h * w;
    const classes = probs.length / (b.n * hw);
    for (let k = 0; k < b.n; k++) {
      const s = b.samples[k]!;
      const p = plane(probs, k, classes, hw);
      const truth = createMask(h, w, b.cached ? b.cached[k]!.mask.subarray(0, hw) : Uint8Array.from(plane(b.masks, k, 1, hw), (v) => (v ? 1 : 0)));
      let predicted = thresholdMask(p, h, w, post.threshold);
      // The min-area gate is defined in original pixels; at model resolution it scales with the area ratio.
      if (post.minArea > 0) {
        const gate = (post.minArea * hw) / (s.meta.origRows * s.meta.origCols);
        const area = maskArea(predicted);
        if (area > 0 && area < gate) predicted = createMask(h, w);
      }
      const score: ImageScore = { id: s.id, hasMask: s.meta.hasMask, dice: dice(predicted, truth), predictedArea: maskArea(predicted), truthArea: maskArea(truth) };
      if (o.original) {
        const orig = b.cached?.[k]?.originalMask;
        if (!orig) throw new Error('validation at original resolution needs a loader with originalMasks');
        const [pred] = await probabilitiesToMasks(p, { channels: 1, height: h, width: w, rows: orig.rows, cols: orig.cols, labels: ['mask'], threshold: post.threshold, minArea: post.minArea });
        score.diceOriginal = dice(pred!.mask, orig);
      }
      images.push(score);
    }
    o.onPredictions?.(b, probs);
    o.onBatch?.(++done, total);
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return {
    dice: mean(images.map((s) => s.dice)),
    diceOriginal: o.original ? mean(images.map((s) => s.diceOriginal!)) : null,
    images,
    seconds: (performance.now() - t0) / 1000,
  };
}
