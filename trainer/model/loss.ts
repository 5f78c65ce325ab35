import type { Graph, Value } from '../graph/builder.ts';

export interface ComboLossWeights {
  bce: number;
  dice: number;
  focal: number;
}

export interface ComboLossGraph {
  total: Value;
  bce: Value;
  dice: Value;
  focal: Value;
}

/** Focal loss focusing parameter and probability clamp, as in the SIIM-ACR winner's FocalLoss2d. */
export const FOCAL_GAMMA = 2;
export const FOCAL_CLAMP = 1e-8;
/** The winner's ComboLoss clamps the total from below. */
export const TOTAL_MIN = 1e-5;

export function validateLossWeights(w: ComboLossWeights): void {
  for (const k of ['bce', 'dice', 'focal'] as const) {
    if (!Number.isFinite(w[k]) || w[k] < 0) throw new RangeError(`loss weight ${k} must be a finite number >= 0, got ${w[k]}`);
  }
  if (w.bce + w.dice + w.focal <= 0) throw new RangeError('at least one loss weight must be positive');
}

/**
 * ComboLoss of the SIIM-ACR pneumothorax winner (sneddy, unet_pipeline/Losses.py), in graph form:
 *  - bce: mean over all elements of the stable BCE-with-logits max(x,0) - x*t + log(1 + exp(-|x|));
 *  - dice: per class c over the whole batch, 1 - (2*sum(p*t) + s) / (sum(p) + sum(t) + s) with
 *    p = sigmoid(x), averaged over classes (the original weights channels 1, 0.5, 0.5; with one class
 *    both agree);
 *  - focal: mean of -(1 - pt)^2 * log(pt), pt = t*p + (1-t)*(1-p), p and t clamped to [1e-8, 1-1e-8];
 *  - total = sum of weight * component, clamped below at 1e-5. Components with weight 0 are still
 *    computed for reporting but left out of the total (and so out of the gradient).
 */
export function buildComboLoss(g: Graph, logits: Value, target: Value, w: ComboLossWeights, diceSmooth = 1): ComboLossGraph {
  validateLossWeights(w);
  if (!(diceSmooth >= 0)) throw new RangeError(`diceSmooth must be >= 0, got ${diceSmooth}`);
  const one = g.scalarLike(1, logits);
  const x = logits;

  // log(1 + exp(-|x|)) from Exp and Log: onnxruntime's CPU Softplus is an unvectorised scalar loop,
  // far slower than these two; exp(-|x|) <= 1, so nothing overflows.
  const softplusNegAbs = g.log(g.add(g.exp(g.neg(g.abs(x))), one));
  const bce = g.reduceMean(g.add(g.sub(g.relu(x), g.mul(x, target)), softplusNegAbs), undefined, false);

  const p = g.sigmoid(x);
  const axes = [0, ...x.shape.slice(2).map((_, i) => i + 2)];
  const inter = g.reduceSum(g.mul(p, target), axes, false);
  const sumP = g.reduceSum(p, axes, false);
  const sumT = g.reduceSum(target, axes, false);
  const s = g.scalarLike(diceSmooth, x);
  const ratio = g.div(g.add(g.mul(inter, g.scalarLike(2, x)), s), g.add(g.add(sumP, sumT), s));
  const dice = g.reduceMean(g.sub(one, ratio), undefined, false);

  const pc = g.clip(p, FOCAL_CLAMP, 1 - FOCAL_CLAMP);
  const tc = g.clip(target, FOCAL_CLAMP, 1 - FOCAL_CLAMP);
  const pt = g.add(g.mul(g.sub(one, tc), g.sub(one, pc)), g.mul(tc, pc));
  const q = g.sub(one, pt);
  const focal = g.reduceMean(g.neg(g.mul(g.mul(q, q), g.log(pt))), undefined, false);

  let total: Value | null = null;
  for (const [value, weight] of [
    [bce, w.bce],
    [dice, w.dice],
    [focal, w.focal],
  ] as const) {
    if (weight === 0) continue;
    const term = weight === 1 ? value : g.mul(value, g.scalarLike(weight, x));
    total = total ? g.add(total, term) : term;
  }
  return { total: g.clip(total!, TOTAL_MIN), bce, dice, focal };
}
