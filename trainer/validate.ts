/**
 * Validation: per-image Dice (Kaggle convention, empty/empty = 1) averaged over the fold, at model
 * resolution and at original resolution, both through core/segmentation's processor: the service's
 * own path from network output to a mask (activation, resampling to the grid asked for, the threshold
 * rule, the min-area gate).
 *
 * Softmax (multi-class) models: the processor's softmax + argmax gives one mask per non-background
 * class; each is scored against that class's truth (empty/empty = 1), an image's Dice is the mean
 * over the non-background classes, and the fold's figure the mean over images (so also the mean of
 * the per-class means, which are reported too).
 *
 * The validation loss comes from the same pass: each batch's logits (inference BatchNorm, as
 * PyTorch's model.eval()) go through the session's training objective (model/loss-set.ts: the same
 * terms, weights and clamp as the step), averaged over images as the training loss is.
 */
import { createMask, maskArea } from '../core/mask.ts';
import { dice } from '../core/metrics/index.ts';
import type { PreprocessSpec } from '../core/preprocess/spec.ts';
import type { Postprocessing } from '../core/segmentation/postprocessing.ts';
import { SegmentationProcessor } from '../core/segmentation/processor.ts';
import type { Batch, BatchLoader } from './data/loader.ts';
import { LossMeans, lossSet, type TermValues } from './model/loss-set.ts';
import type { TrainingSession } from './session/types.ts';

export type { Postprocessing };

export interface ImageScore {
  id: string;
  hasMask: boolean;
  dice: number;
  diceOriginal?: number;
  /** Softmax models: Dice of each non-background class, by label. */
  classDice?: Record<string, number>;
  classDiceOriginal?: Record<string, number>;
  /** Foreground pixels at model resolution: predicted (after the gate) and true. */
  predictedArea: number;
  truthArea: number;
}

export interface ValidationResult {
  dice: number;
  /**
   * The Dice a predict-nothing model gets on this fold (empty/empty = 1, empty vs. a mask = 0): the
   * fraction of images without foreground; softmax models: the mean over images of the fraction of
   * non-background classes absent from the image. A validation Dice at this value learned nothing.
   */
  baseline: number;
  /** null when original-resolution scoring was skipped. */
  diceOriginal: number | null;
  /** Softmax models: mean over images of each non-background class's Dice, by label. */
  classDice?: Record<string, number>;
  classDiceOriginal?: Record<string, number> | null;
  /** Mean total training objective over the fold's images (the training loss's definition, on inference logits). */
  loss: number;
  /** ... and of each term, by name in the objective's term order. */
  losses: TermValues;
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
  o: { original: boolean; onBatch?: (done: number, total: number) => void; onPredictions?: (b: Batch, probs: Float32Array) => void; softmax?: SoftmaxLabels },
): Promise<ValidationResult> {
  if (o.softmax) return validateSoftmax(session, loader, spec, post, { ...o, softmax: o.softmax });
  const t0 = performance.now();
  // The trainer's predict graph emits logits, as the exported model does.
  const processor = new SegmentationProcessor({ preprocessing: spec, activation: 'logits', labels: ['mask'], postprocessing: post });
  const images: ImageScore[] = [];
  const total = loader.batchesPerEpoch();
  let done = 0;
  const losses = new LossMeans(lossSet(false));
  for await (const b of loader.epoch(0)) {
    const logits = await session.predict(b.images, b.n);
    losses.add(await session.loss(logits, b.masks, b.n), b.n);
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
    baseline: mean(images.map((s) => (s.truthArea === 0 ? 1 : 0))),
    diceOriginal: o.original ? mean(images.map((s) => s.diceOriginal!)) : null,
    loss: losses.loss,
    losses: losses.losses,
    images,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** A softmax model's labels (one per channel) and its background channel. */
export interface SoftmaxLabels {
  labels: readonly string[];
  background: number;
}

/** Row-major 0/1 mask of the pixels of class `c` in a class-index map. */
function classMask(rows: number, cols: number, labels: Uint8Array, c: number): ReturnType<typeof createMask> {
  const out = new Uint8Array(rows * cols);
  for (let i = 0; i < out.length; i++) out[i] = labels[i] === c ? 1 : 0;
  return createMask(rows, cols, out);
}

async function validateSoftmax(
  session: TrainingSession,
  loader: BatchLoader,
  spec: PreprocessSpec,
  post: Postprocessing,
  o: { original: boolean; onBatch?: (done: number, total: number) => void; onPredictions?: (b: Batch, probs: Float32Array) => void; softmax: SoftmaxLabels },
): Promise<ValidationResult> {
  const t0 = performance.now();
  const { labels, background } = o.softmax;
  const processor = new SegmentationProcessor({ preprocessing: spec, activation: 'softmax', labels, background: labels[background]!, postprocessing: post });
  const fg = labels.map((_, c) => c).filter((c) => c !== background);
  const images: ImageScore[] = [];
  const total = loader.batchesPerEpoch();
  let done = 0;
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  /** Per-class Dice of the processor's masks against a class-index map. */
  const score = (masks: Awaited<ReturnType<SegmentationProcessor['postprocess']>>, truth: Uint8Array, rows: number, cols: number): Record<string, number> => {
    const byLabel = new Map(masks.map((m) => [m.label, m.mask]));
    return Object.fromEntries(fg.map((c) => [labels[c]!, dice(byLabel.get(labels[c]!)!, classMask(rows, cols, truth, c))]));
  };
  const C = labels.length;
  const { height: h, width: w } = spec.size;
  const hw = h * w;
  /** Per image: the predict-nothing Dice (fraction of foreground classes absent). */
  const empties: number[] = [];
  const losses = new LossMeans(lossSet(true));
  for await (const b of loader.epoch(0)) {
    if (!b.labels) throw new Error('softmax validation needs class-index targets (a multi-class layout)');
    const logits = await session.predict(b.images, b.n);
    if (logits.length !== b.n * C * hw) throw new Error(`the model gives ${logits.length / (b.n * hw)} channels, the labels are ${C}`);
    // b.masks is the one-hot encoding of b.labels: the step's target.
    losses.add(await session.loss(logits, b.masks, b.n), b.n);
    for (let k = 0; k < b.n; k++) {
      const s = b.samples[k]!;
      const out = logits.subarray(k * C * hw, (k + 1) * C * hw);
      const truth = b.labels.subarray(k * hw, (k + 1) * hw);
      const gate = (post.minArea * hw) / (s.meta.origRows * s.meta.origCols);
      const predicted = await processor.postprocess(out.slice(), undefined, { rows: h, cols: w, minArea: gate });
      const classDice = score(predicted, truth, h, w);
      let predictedArea = 0;
      for (const m of predicted) predictedArea += m.area;
      let truthArea = 0;
      for (let i = 0; i < hw; i++) truthArea += truth[i] !== background ? 1 : 0;
      const present = new Set<number>();
      for (let i = 0; i < hw; i++) present.add(truth[i]!);
      empties.push(mean(fg.map((c) => (present.has(c) ? 0 : 1))));
      const sc: ImageScore = { id: s.id, hasMask: s.meta.hasMask, dice: mean(Object.values(classDice)), classDice, predictedArea, truthArea };
      if (o.original) {
        const orig = b.cached?.[k]?.originalLabels;
        if (!orig) throw new Error('validation at original resolution needs a loader with originalMasks');
        const masks = await processor.postprocess(out.slice(), undefined, { rows: orig.rows, cols: orig.cols });
        sc.classDiceOriginal = score(masks, orig.data, orig.rows, orig.cols);
        sc.diceOriginal = mean(Object.values(sc.classDiceOriginal));
      }
      images.push(sc);
    }
    if (o.onPredictions) o.onPredictions(b, processor.probabilities(logits.slice()));
    o.onBatch?.(++done, total);
  }
  const perClass = (pick: (s: ImageScore) => Record<string, number> | undefined): Record<string, number> =>
    Object.fromEntries(fg.map((c) => [labels[c]!, mean(images.map((s) => pick(s)![labels[c]!]!))]));
  return {
    dice: mean(images.map((s) => s.dice)),
    baseline: mean(empties),
    diceOriginal: o.original ? mean(images.map((s) => s.diceOriginal!)) : null,
    classDice: perClass((s) => s.classDice),
    classDiceOriginal: o.original ? perClass((s) => s.classDiceOriginal) : null,
    loss: losses.loss,
    losses: losses.losses,
    images,
    seconds: (performance.now() - t0) / 1000,
  };
}
