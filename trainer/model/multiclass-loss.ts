/**
 * The multi-class (softmax) training loss: a weighted sum of named terms over N x C x H x W logits
 * and one-hot (or soft) targets of the same shape, channel 0 background by convention. Built like
 * the binary ComboLoss in `loss.ts` (a list of named terms, each a scalar; weight-0 terms are built
 * for reporting but left out of the total and so of the gradient; the total is clamped below at
 * 1e-5), with the softmax taken once over the channel axis and shared between the terms:
 *  - ce: mean over pixels (N, H, W) of -sum_c t_c * log p_c, log p = LogSoftmax(x, axis 1)
 *    (stable for large logits: no log of a probability is ever taken);
 *  - dice: per class c over the whole batch, 1 - (2*sum(p_c*t_c) + s) / (sum(p_c) + sum(t_c) + s),
 *    p = Softmax(x, axis 1), averaged over the classes it counts (by default the foreground ones:
 *    every class except `background`; `diceIncludeBackground` counts it too);
 *  - focal: mean over pixels of -(1 - pt)^gamma * log pt with log pt = sum_c t_c * log p_c (for
 *    one-hot targets pt is the probability of the true class; gamma 2 as in `loss.ts`).
 * Class indices to one-hot targets: channel c of the target is (label == c).
 */
import type { Graph, Value } from '../graph/builder.ts';
import { attr, makeTensor } from '../graph/builder.ts';

export interface MulticlassLossInputs {
  g: Graph;
  /** N x C x H x W. */
  logits: Value;
  /** N x C x H x W, one-hot (or soft: each pixel's channels sum to 1). */
  target: Value;
  /** Scalar 1 like the logits. */
  one: Value;
  /** Softmax(logits, 1), created once and shared. */
  softmax(): Value;
  /** LogSoftmax(logits, 1), created once and shared. */
  logSoftmax(): Value;
  diceSmooth: number;
  /** Per-class weights of the Dice mean ([C], summing to 1): 0 for a class Dice does not count. */
  diceClassWeights: number[];
  focalGamma: number;
}

export interface MulticlassLossTerm<N extends string = string> {
  /** Graph output, step result and metric key; position in the weights. */
  readonly name: N;
  /** Legend text in the training curves. */
  readonly label: string;
  /** Weight in the default recipe. */
  readonly weight: number;
  /** A scalar (mean over the batch). */
  build(x: MulticlassLossInputs): Value;
}

export const MULTICLASS_FOCAL_GAMMA = 2;
/** As the binary ComboLoss: the total is clamped from below. */
export const MULTICLASS_TOTAL_MIN = 1e-5;

/** sum over channels of t * log p, N x H x W. */
function targetLogProb({ g, target, logSoftmax }: MulticlassLossInputs): Value {
  return g.reduceSum(g.mul(target, logSoftmax()), [1], false);
}

const ce: MulticlassLossTerm<'ce'> = {
  name: 'ce',
  label: 'cross-entropy',
  weight: 1,
  build: (x) => x.g.neg(x.g.reduceMean(targetLogProb(x), undefined, false)),
};

const dice: MulticlassLossTerm<'dice'> = {
  name: 'dice',
  label: 'dice loss',
  weight: 1,
  build: ({ g, logits: x, target, one, softmax, diceSmooth, diceClassWeights }) => {
    const p = softmax();
    const axes = [0, ...x.shape.slice(2).map((_, i) => i + 2)];
    const inter = g.reduceSum(g.mul(p, target), axes, false);
    const sumP = g.reduceSum(p, axes, false);
    const sumT = g.reduceSum(target, axes, false);
    const s = g.scalarLike(diceSmooth, x);
    const ratio = g.div(g.add(g.mul(inter, g.scalarLike(2, x)), s), g.add(g.add(sumP, sumT), s));
    const perClass = g.sub(one, ratio); // [C]
    const w = g.constant(makeTensor(x.dtype, [diceClassWeights.length], diceClassWeights), 'dice_class_weights');
    return g.reduceSum(g.mul(perClass, w), undefined, false);
  },
};

const focal: MulticlassLossTerm<'focal'> = {
  name: 'focal',
  label: 'focal',
  weight: 0,
  build: (x) => {
    const { g, one, focalGamma } = x;
    const logPt = targetLogProb(x);
    const q = g.sub(one, g.exp(logPt));
    const mod = focalGamma === 2 ? g.mul(q, q) : focalGamma === 1 ? q : g.pow(q, g.scalarLike(focalGamma, q));
    return g.reduceMean(g.neg(g.mul(mod, logPt)), undefined, false);
  },
};

/** Every multi-class loss term, in graph-output and weights order. */
export const MULTICLASS_LOSS_TERMS = [ce, dice, focal] as const;

export type MulticlassLossName = (typeof MULTICLASS_LOSS_TERMS)[number]['name'];
export const MULTICLASS_LOSS_NAMES: readonly MulticlassLossName[] = MULTICLASS_LOSS_TERMS.map((t) => t.name);
export type MulticlassLossValues = Record<MulticlassLossName, number>;
export type MulticlassLossWeights = MulticlassLossValues;

/** ce 1 / dice 1 / focal 0 (the usual CE + Dice recipe; focal is there to switch on). */
export const DEFAULT_MULTICLASS_LOSS_WEIGHTS: MulticlassLossWeights = Object.fromEntries(
  MULTICLASS_LOSS_TERMS.map((t) => [t.name, t.weight]),
) as MulticlassLossWeights;

/** 'ce 0.1234 dice 0.5678 focal 0.0012' */
export function formatMulticlassLosses(v: MulticlassLossValues, digits = 4): string {
  return MULTICLASS_LOSS_NAMES.map((n) => `${n} ${v[n].toFixed(digits)}`).join(' ');
}

/** A one-line reason the weights are unusable, or undefined. */
export function multiclassLossWeightsError(w: MulticlassLossWeights): string | undefined {
  for (const k of MULTICLASS_LOSS_NAMES) {
    if (!Number.isFinite(w[k]) || w[k] < 0) return `loss weight ${k} must be a finite number >= 0, got ${w[k]}`;
  }
  if (MULTICLASS_LOSS_NAMES.every((k) => w[k] <= 0)) return 'at least one loss weight must be positive';
  return undefined;
}

export interface MulticlassLossOptions {
  /** Default DEFAULT_MULTICLASS_LOSS_WEIGHTS; missing names take their default. */
  weights?: Partial<MulticlassLossWeights>;
  /** Dice smoothing s (>= 0). Default 1. */
  diceSmooth?: number;
  /** Index of the background channel. Default 0. */
  background?: number;
  /** Count the background class in the Dice mean too. Default false (foreground classes only). */
  diceIncludeBackground?: boolean;
  /** Focal focusing parameter (>= 0). Default 2. */
  focalGamma?: number;
}

export interface MulticlassLossGraph {
  /** Clamped weighted sum of the terms with a positive weight. */
  total: Value;
  terms: Record<MulticlassLossName, Value>;
  /** Softmax(logits, 1): the per-class probabilities, N x C x H x W (for metrics). */
  probabilities: Value;
}

/**
 * Builds the multi-class loss. The class count C (logits.shape[1]) must be static; the batch and
 * spatial dims may be symbolic. `target` must have the logits' shape (one-hot of the label map).
 */
export function buildMulticlassLoss(g: Graph, logits: Value, target: Value, opts: MulticlassLossOptions = {}): MulticlassLossGraph {
  const w: MulticlassLossWeights = { ...DEFAULT_MULTICLASS_LOSS_WEIGHTS, ...opts.weights };
  const err = multiclassLossWeightsError(w);
  if (err) throw new RangeError(err);
  const diceSmooth = opts.diceSmooth ?? 1;
  if (!(diceSmooth >= 0)) throw new RangeError(`diceSmooth must be >= 0, got ${diceSmooth}`);
  const focalGamma = opts.focalGamma ?? MULTICLASS_FOCAL_GAMMA;
  if (!(focalGamma >= 0 && Number.isFinite(focalGamma))) throw new RangeError(`focalGamma must be a finite number >= 0, got ${focalGamma}`);
  if (logits.shape.length < 3) throw new RangeError(`logits must be N x C x spatial..., got [${logits.shape}]`);
  const C = logits.shape[1];
  if (typeof C !== 'number') throw new RangeError(`the class count (logits dim 1) must be static, got '${C}'`);
  if (C < 2) throw new RangeError(`a softmax loss needs at least 2 classes (background + 1), got ${C}`);
  if (target.shape.length !== logits.shape.length || target.shape[1] !== C) {
    throw new RangeError(`target [${target.shape}] must be one-hot with the logits' shape [${logits.shape}]`);
  }
  const background = opts.background ?? 0;
  if (!Number.isInteger(background) || background < 0 || background >= C) throw new RangeError(`background must be a class index in 0..${C - 1}, got ${background}`);
  const counted: number[] = Array.from({ length: C }, (_, c) => (opts.diceIncludeBackground || c !== background ? 1 : 0));
  const nCounted = counted.reduce((a, b) => a + b, 0);
  const diceClassWeights = counted.map((v) => v / nCounted);

  let p: Value | undefined;
  let logp: Value | undefined;
  const inputs: MulticlassLossInputs = {
    g,
    logits,
    target,
    one: g.scalarLike(1, logits),
    softmax: () => (p ??= g.softmax(logits, 1)),
    logSoftmax: () => (logp ??= g.logSoftmax(logits, 1)),
    diceSmooth,
    diceClassWeights,
    focalGamma,
  };
  const terms = {} as Record<MulticlassLossName, Value>;
  for (const term of MULTICLASS_LOSS_TERMS) terms[term.name] = term.build(inputs);
  let total: Value | null = null;
  for (const { name } of MULTICLASS_LOSS_TERMS) {
    const weight = w[name];
    if (weight === 0) continue;
    const weighted = weight === 1 ? terms[name] : g.mul(terms[name], g.scalarLike(weight, logits));
    total = total ? g.add(total, weighted) : weighted;
  }
  return { total: g.clip(total!, MULTICLASS_TOTAL_MIN), terms, probabilities: inputs.softmax() };
}

if (new Set(MULTICLASS_LOSS_NAMES).size !== MULTICLASS_LOSS_NAMES.length || MULTICLASS_LOSS_NAMES.includes('loss' as MulticlassLossName)) {
  throw new Error('multi-class loss term names must be unique and not "loss"');
}

/**
 * One-hot targets N x C x H x W (dtype of `like`) from an int64 label map N x H x W of class
 * indices, in the graph: channel c is (label == c). Labels outside 0..C-1 give all-zero pixels.
 */
export function oneHotTarget(g: Graph, labels: Value, classes: number, like: Value): Value {
  if (labels.dtype !== 'int64') throw new RangeError(`labels must be int64 class indices, got ${labels.dtype}`);
  if (!Number.isInteger(classes) || classes < 1) throw new RangeError(`classes must be a positive integer, got ${classes}`);
  const expanded = g.op1('Unsqueeze', [labels, g.int64s([1])]);
  const ids = g.constant(makeTensor('int64', [1, classes, ...labels.shape.slice(1).map(() => 1)], Array.from({ length: classes }, (_, c) => c)), 'class_ids');
  const eq = g.op1('Equal', [expanded, ids]);
  return g.op1('Cast', [eq], { to: attr.int(like.dtype === 'float64' ? 11 : 1) });
}
