import type { Mask } from '../mask.ts';

/** Pixel counts of a prediction against a reference; any nonzero byte is foreground. */
export interface Overlap {
  intersection: number;
  predicted: number;
  reference: number;
}

export function overlap(pred: Mask, ref: Mask): Overlap {
  if (pred.rows !== ref.rows || pred.cols !== ref.cols) {
    throw new RangeError(`masks differ in size: ${pred.rows}x${pred.cols} vs ${ref.rows}x${ref.cols}`);
  }
  const a = pred.data;
  const b = ref.data;
  if (a.length !== b.length) throw new RangeError(`mask data lengths differ: ${a.length} vs ${b.length}`);
  let inter = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] !== 0 ? 1 : 0;
    const y = b[i] !== 0 ? 1 : 0;
    na += x;
    nb += y;
    inter += x & y;
  }
  return { intersection: inter, predicted: na, reference: nb };
}

/** Dice = 2|A∩B| / (|A| + |B|); 1 when both masks are empty (Kaggle convention). */
export function dice(a: Mask, b: Mask): number {
  const o = overlap(a, b);
  const denom = o.predicted + o.reference;
  return denom === 0 ? 1 : (2 * o.intersection) / denom;
}

/** IoU (Jaccard) = |A∩B| / |A∪B|; 1 when both masks are empty. */
export function iou(a: Mask, b: Mask): number {
  const o = overlap(a, b);
  const union = o.predicted + o.reference - o.intersection;
  return union === 0 ? 1 : o.intersection / union;
}

/**
 * Mean of per-image Dice over (prediction, reference) pairs, the Kaggle leaderboard metric
 * (an empty image predicted empty scores 1, anything predicted on it scores 0).
 */
export function meanDice(pairs: Iterable<readonly [Mask, Mask]>): number {
  let sum = 0;
  let n = 0;
  for (const [a, b] of pairs) {
    sum += dice(a, b);
    n++;
  }
  if (n === 0) throw new RangeError('meanDice: no mask pairs');
  return sum / n;
}
