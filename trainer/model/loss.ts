/**
 * The training loss: a weighted sum of named terms. `LOSS_TERMS` is the one list of them: the graph
 * outputs, step results, epoch metrics, progress bar, report, --loss-weights and the manifest all
 * iterate over it, so a new loss is one more entry here (name, seed weight, graph).
 *
 * The default terms are the ComboLoss of the SIIM-ACR pneumothorax winner (sneddy,
 * unet_pipeline/Losses.py):
 *  - bce: mean over all elements of the stable BCE-with-logits max(x,0) - x*t + log(1 + exp(-|x|));
 *  - dice: per class c over the whole batch, 1 - (2*sum(p*t) + s) / (sum(p) + sum(t) + s) with
 *    p = sigmoid(x), averaged over classes (the original weights channels 1, 0.5, 0.5; with one class
 *    both agree);
 *  - focal: mean of -(1 - pt)^2 * log(pt), pt = t*p + (1-t)*(1-p), p and t clamped to [1e-8, 1-1e-8];
 *  - total = sum of weight * term, clamped below at 1e-5. Terms with weight 0 are still computed for
 *    reporting but left out of the total (and so out of the gradient).
 */
import type { Graph, Value } from '../graph/builder.ts';

/** What a term's graph is built from; `sigmoid()` is created once and shared between terms. */
export interface LossInputs {
  g: Graph;
  /** N x classes x H x W. */
  logits: Value;
  target: Value;
  /** Scalar 1 like the logits. */
  one: Value;
  sigmoid(): Value;
  diceSmooth: number;
}

export interface LossTerm<N extends string = string> {
  /** Graph output, step result and metric key; position in --loss-weights. */
  readonly name: N;
  /** Legend text in the training curves. */
  readonly label: string;
  /** Weight in the default recipe (seed 004: bce 3 / dice 1 / focal 4). */
  readonly weight: number;
  /** A scalar (mean over the batch). */
  build(x: LossInputs): Value;
}

/** Focal loss focusing parameter and probability clamp, as in the SIIM-ACR winner's FocalLoss2d. */
export const FOCAL_GAMMA = 2;
export const FOCAL_CLAMP = 1e-8;
/** The winner's ComboLoss clamps the total from below. */
export const TOTAL_MIN = 1e-5;

const bce: LossTerm<'bce'> = {
  name: 'bce',
  label: 'bce',
  weight: 3,
  build: ({ g, logits: x, target, one }) => {
    // log(1 + exp(-|x|)) from Exp and Log: onnxruntime's CPU Softplus is an unvectorised scalar loop,
    // far slower than these two; exp(-|x|) <= 1, so nothing overflows.
    const softplusNegAbs = g.log(g.add(g.exp(g.neg(g.abs(x))), one));
    return g.reduceMean(g.add(g.sub(g.relu(x), g.mul(x, target)), softplusNegAbs), undefined, false);
  },
};

const dice: LossTerm<'dice'> = {
  name: 'dice',
  label: 'dice loss',
  weight: 1,
  build: ({ g, logits: x, target, one, sigmoid, diceSmooth }) => {
    const p = sigmoid();
    const axes = [0, ...x.shape.slice(2).map((_, i) => i + 2)];
    const inter = g.reduceSum(g.mul(p, target), axes, false);
    const sumP = g.reduceSum(p, axes, false);
    const sumT = g.reduceSum(target, axes, false);
    const s = g.scalarLike(diceSmooth, x);
    const ratio = g.div(g.add(g.mul(inter, g.scalarLike(2, x)), s), g.add(g.add(sumP, sumT), s));
    return g.reduceMean(g.sub(one, ratio), undefined, false);
  },
};

const focal: LossTerm<'focal'> = {
  name: 'focal',
  label: 'focal',
  weight: 4,
  build: ({ g, target, one, sigmoid }) => {
    const pc = g.clip(sigmoid(), FOCAL_CLAMP, 1 - FOCAL_CLAMP);
    const tc = g.clip(target, FOCAL_CLAMP, 1 - FOCAL_CLAMP);
    const pt = g.add(g.mul(g.sub(one, tc), g.sub(one, pc)), g.mul(tc, pc));
    const q = g.sub(one, pt);
    return g.reduceMean(g.neg(g.mul(g.mul(q, q), g.log(pt))), undefined, false);
  },
};

/** Every loss term, in graph-output and --loss-weights order. */
export const LOSS_TERMS = [bce, dice, focal] as const;

export type LossName = (typeof LOSS_TERMS)[number]['name'];
export const LOSS_NAMES: readonly LossName[] = LOSS_TERMS.map((t) => t.name);
/** One number per term: weights, per-step values, epoch means. */
export type LossValues = Record<LossName, number>;
export type LossWeights = LossValues;

/** The name of the total in graph outputs and step results (no term may take it). */
export const TOTAL = 'loss';

/** A LossValues from a function of the term name (in LOSS_TERMS order). */
export function lossValues(f: (name: LossName) => number): LossValues {
  return Object.fromEntries(LOSS_NAMES.map((n) => [n, f(n)])) as LossValues;
}

export const DEFAULT_LOSS_WEIGHTS: LossWeights = lossValues((n) => LOSS_TERMS.find((t) => t.name === n)!.weight);

/** 'bce 0.1234 dice 0.5678 focal 0.0012' */
export function formatLosses(v: LossValues, digits = 4): string {
  return LOSS_NAMES.map((n) => `${n} ${v[n].toFixed(digits)}`).join(' ');
}

/** A one-line reason the weights are unusable, or undefined. */
export function lossWeightsError(w: LossWeights): string | undefined {
  for (const k of LOSS_NAMES) {
    if (!Number.isFinite(w[k]) || w[k] < 0) return `loss weight ${k} must be a finite number >= 0, got ${w[k]}`;
  }
  if (LOSS_NAMES.every((k) => w[k] <= 0)) return 'at least one loss weight must be positive';
  return undefined;
}

export function validateLossWeights(w: LossWeights): void {
  const e = lossWeightsError(w);
  if (e) throw new RangeError(e);
}

export interface LossGraph {
  total: Value;
  terms: Record<LossName, Value>;
}

export function buildLoss(g: Graph, logits: Value, target: Value, w: LossWeights, diceSmooth = 1): LossGraph {
  validateLossWeights(w);
  if (!(diceSmooth >= 0)) throw new RangeError(`diceSmooth must be >= 0, got ${diceSmooth}`);
  let p: Value | undefined;
  const inputs: LossInputs = { g, logits, target, one: g.scalarLike(1, logits), sigmoid: () => (p ??= g.sigmoid(logits)), diceSmooth };
  const terms = {} as Record<LossName, Value>;
  let total: Value | null = null;
  for (const term of LOSS_TERMS) terms[term.name] = term.build(inputs);
  for (const { name } of LOSS_TERMS) {
    const weight = w[name];
    if (weight === 0) continue;
    const weighted = weight === 1 ? terms[name] : g.mul(terms[name], g.scalarLike(weight, logits));
    total = total ? g.add(total, weighted) : weighted;
  }
  return { total: g.clip(total!, TOTAL_MIN), terms };
}

/** The default terms are the winner's ComboLoss; the name older callers use. */
export const buildComboLoss = buildLoss;

if (LOSS_NAMES.includes(TOTAL as LossName) || new Set(LOSS_NAMES).size !== LOSS_NAMES.length) throw new Error('loss term names must be unique and not "loss"');
