/**
 * The loss of a run by its objective: `sigmoid` (independent labels, the binary ComboLoss of
 * loss.ts: bce / dice / focal) or `softmax` (mutually exclusive classes with a background, the
 * multi-class loss of multiclass-loss.ts: ce / dice / focal). The trainer shell (config, step results,
 * progress, epoch metrics, report, CLI) asks this module for the term names instead of naming them,
 * so the same code carries either set of terms. `buildObjectiveLoss` is the one place that picks
 * the graph by objective: the training step and the validation loss both build theirs through it.
 */
import type { Graph, Value } from '../graph/builder.ts';
import { buildLoss, DEFAULT_LOSS_WEIGHTS, LOSS_TERMS, type LossWeights } from './loss.ts';
import { buildMulticlassLoss, DEFAULT_MULTICLASS_LOSS_WEIGHTS, MULTICLASS_LOSS_TERMS, type MulticlassLossWeights } from './multiclass-loss.ts';

export type Objective = 'sigmoid' | 'softmax';

export interface TermInfo {
  readonly name: string;
  /** Legend text in the training curves. */
  readonly label: string;
  readonly weight: number;
}

/** One number per loss term (weights, per-step values, epoch means), keyed by term name in term order. */
export type TermValues = Record<string, number>;

export interface LossSet {
  readonly objective: Objective;
  /** Curves panel title. */
  readonly title: string;
  readonly terms: readonly TermInfo[];
  readonly names: readonly string[];
  readonly defaults: TermValues;
}

const info = (t: { name: string; label: string; weight: number }): TermInfo => ({ name: t.name, label: t.label, weight: t.weight });

export const LOSS_SETS: Record<Objective, LossSet> = {
  sigmoid: { objective: 'sigmoid', title: 'loss (ComboLoss)', terms: LOSS_TERMS.map(info), names: LOSS_TERMS.map((t) => t.name), defaults: { ...DEFAULT_LOSS_WEIGHTS } },
  softmax: {
    objective: 'softmax',
    title: 'loss (softmax CE + Dice)',
    terms: MULTICLASS_LOSS_TERMS.map(info),
    names: MULTICLASS_LOSS_TERMS.map((t) => t.name),
    defaults: { ...DEFAULT_MULTICLASS_LOSS_WEIGHTS },
  },
};

export const lossSet = (softmax: boolean): LossSet => LOSS_SETS[softmax ? 'softmax' : 'sigmoid'];

/** Values in the set's term order from a function of the name. */
export function termValues(set: LossSet, f: (name: string) => number): TermValues {
  return Object.fromEntries(set.names.map((n) => [n, f(n)]));
}

/** 'bce 0.1234 dice 0.5678 focal 0.0012' (whatever terms the values hold, in their order). */
export function formatTerms(v: TermValues, digits = 4): string {
  return Object.entries(v)
    .map(([n, x]) => `${n} ${x.toFixed(digits)}`)
    .join(' ');
}

/** A one-line reason the weights do not fit the set, or undefined. */
export function termWeightsError(set: LossSet, w: TermValues): string | undefined {
  const keys = Object.keys(w);
  if (keys.length !== set.names.length || set.names.some((n) => !(n in w))) {
    return `loss weights of the ${set.objective} loss are ${set.names.join(',')}; got ${keys.join(',') || 'none'}`;
  }
  for (const k of set.names) {
    if (!Number.isFinite(w[k]) || w[k]! < 0) return `loss weight ${k} must be a finite number >= 0, got ${w[k]}`;
  }
  if (set.names.every((k) => w[k]! <= 0)) return 'at least one loss weight must be positive';
  return undefined;
}

/** What the loss graph of a run is built from: the weights of its set, and for softmax the background channel. */
export interface ObjectiveLossOptions {
  weights: TermValues;
  /** Softmax objective (multi-class loss); absent: the sigmoid ComboLoss. */
  softmax?: { background: number };
  diceSmooth: number;
}

/**
 * The objective's loss over `logits` against `target` (both N x classes x H x W; softmax: one-hot):
 * the clamped weighted total and each term of the set, by name.
 */
export function buildObjectiveLoss(g: Graph, logits: Value, target: Value, o: ObjectiveLossOptions): { total: Value; terms: Record<string, Value> } {
  const loss = o.softmax
    ? buildMulticlassLoss(g, logits, target, { weights: o.weights as MulticlassLossWeights, diceSmooth: o.diceSmooth, background: o.softmax.background })
    : buildLoss(g, logits, target, o.weights as LossWeights, o.diceSmooth);
  return { total: loss.total, terms: loss.terms as Record<string, Value> };
}

/** A loss result: the total under `loss` (loss.ts's TOTAL), each term of the set under its name. */
export type LossResult = { loss: number } & TermValues;

/**
 * Image-weighted means of batch losses (each batch's figures are means over its images, or over the
 * batch for Dice): what an epoch reports for training and for validation alike.
 */
export class LossMeans {
  private total = 0;
  private readonly sums: TermValues;
  images = 0;
  constructor(private readonly set: LossSet) {
    this.sums = termValues(set, () => 0);
  }
  add(r: LossResult, n: number): void {
    this.total += r.loss * n;
    for (const name of this.set.names) this.sums[name]! += r[name]! * n;
    this.images += n;
  }
  /** The mean total (NaN before any batch). */
  get loss(): number {
    return this.total / this.images;
  }
  /** The mean of each term, in the set's order. */
  get losses(): TermValues {
    return termValues(this.set, (n) => this.sums[n]! / this.images);
  }
}
