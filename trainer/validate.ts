/**
 * Validation: per-image Dice (Kaggle convention, empty/empty = 1) averaged over the fold, at model
 * resolution and at original resolution, both through core/segmentation's processor: the service's
 * own path from network output to a mask (activation, resampling to the grid asked for, the threshold
 * rule, the min-area gate).
 */
import { createMask, maskArea } from '../core/mask.ts';
import { dice } from '../core/metrics/index.ts';
import type { PreprocessSpec } from '../core/preprocess/spec.ts';
import type { Postprocessing } from '../core/segmentation/postprocessing.ts';
import { SegmentationProcessor } from '../core/segmentation/processor.ts';
import type { Batch, BatchLoader } from './data/loader.ts';
import type { TrainingSession } from './session/types.ts';

export type { Postprocessing };

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
  // The trainer's predict graph emits logits, as the exported model does.
  const processor = new SegmentationProcessor({ preprocessing: spec, activation: 'logits', labels: ['mask'], postprocessing: post });
  const images: ImageScore[] = [];
  const total = loader.batchesPerEpoch();
  let done = 0;
  for await (const b of loader.epoch(0)) {
    const logits = await session.predict(b.images, b.n);
    const { height: h, width: w } = spec.size;
    const hw = h * w;
    const classes = logits.length / (b.n * hw);
    for (let k = 0; k < b.n; k++) {
      const s = b.samples[k]!;
      const p = plane(logits, k, classes, hw);
      const truth = createMask(h, w, b.cached ? b.cached[k]!.mask.subarray(0, hw) : Uint8Array.from(plane(b.masks, k, 1, hw), (v) => (v ? 1 : 0)));
      // The min-area gate is defined in original pixels; at model resolution it scales with the area ratio.
      const gate = (post.minArea * hw) / (s.meta.origRows * s.meta.origCols);
      const predicted = (await processor.postprocess(p.slice(), undefined, { rows: h, cols: w, minArea: gate }))[0]!.mask;
      const score: ImageScore = { id: s.id, hasMask: s.meta.hasMask, dice: dice(predicted, truth), predictedArea: maskArea(predicted), truthArea: maskArea(truth) };
      if (o.original) {
        const orig = b.cached?.[k]?.originalMask;
        if (!orig) throw new Error('validation at original resolution needs a loader with originalMasks');
        const [pred] = await processor.postprocess(p.slice(), undefined, { rows: orig.rows, cols: orig.cols });
        score.diceOriginal = dice(pred!.mask, orig);
      }
      images.push(score);
    }
    if (o.onPredictions) o.onPredictions(b, processor.probabilities(logits));
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
