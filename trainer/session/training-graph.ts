import { gradients, type GradOptions } from '../graph/autodiff.ts';
import { Graph, type Value } from '../graph/builder.ts';
import { encodeModel } from '../graph/onnx/encode.ts';
import { BATCH_DIM } from '../model/inference-graph.ts';
import { TOTAL, type LossWeights } from '../model/loss.ts';
import { buildObjectiveLoss, lossSet, type TermValues } from '../model/loss-set.ts';
import { buildUNetForward, unetParamSpecs, validateUNetConfig, type ParamSpec, type UNetConfig } from '../model/unet.ts';
import type { AdamConfig, SoftmaxObjective } from './types.ts';

export const TRAIN_OPSET = 17;

/** Graph input/output names of the training step. */
export const IO = {
  image: 'image',
  mask: 'mask',
  /** lr / (1 - beta1^t) */
  stepSize: 'adam.step_size',
  /** 1 / sqrt(1 - beta2^t) */
  invSqrtBc2: 'adam.inv_sqrt_bc2',
  /** The total, then one output per loss term of the objective. */
  losses: (softmax: boolean): string[] => [TOTAL, ...lossSet(softmax).names],
  m: (name: string) => `adam.m.${name}`,
  v: (name: string) => `adam.v.${name}`,
  next: (name: string) => `next.${name}`,
  predictLogits: 'logits',
  /** The loss graph's logits input (its target is `mask`). */
  lossLogits: 'logits',
};

export interface TrainingGraphs {
  /** One Adam step: forward (batch-statistics BN), loss terms and total, backward, Adam, running-stat updates. */
  train: Uint8Array;
  /** Logits with inference BN (the exported model's output; core/segmentation applies the activation); weights and statistics are inputs so the live state feeds it. */
  predict: Uint8Array;
  /** The step's loss (total and terms) over given logits and masks: the validation loss, from predict's logits. */
  loss: Uint8Array;
  specs: ParamSpec[];
  /** Every state tensor the step reads and rewrites: weights, BN statistics, Adam moments. */
  stateNames: string[];
}

export interface TrainingGraphOptions {
  unet: UNetConfig;
  height: number;
  width: number;
  loss: LossWeights | TermValues;
  /** Softmax objective (multi-class loss, background channel); default: sigmoid ComboLoss. */
  softmax?: SoftmaxObjective;
  adam: AdamConfig;
  diceSmooth: number;
  grad?: Partial<GradOptions>;
}

function adamUpdate(g: Graph, p: Value, grad: Value, m: Value, v: Value, stepSize: Value, invSqrtBc2: Value, adam: AdamConfig) {
  const gd = adam.weightDecay > 0 ? g.add(grad, g.mul(p, g.scalar(adam.weightDecay))) : grad;
  const m2 = g.add(g.mul(m, g.scalar(adam.beta1)), g.mul(gd, g.scalar(1 - adam.beta1)));
  const v2 = g.add(g.mul(v, g.scalar(adam.beta2)), g.mul(g.mul(gd, gd), g.scalar(1 - adam.beta2)));
  // PyTorch Adam: p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
  const denom = g.add(g.mul(g.sqrt(v2), invSqrtBc2), g.scalar(adam.eps));
  const p2 = g.sub(p, g.mul(stepSize, g.div(m2, denom)));
  return { p2, m2, v2 };
}

export function buildTrainingGraphs(o: TrainingGraphOptions): TrainingGraphs {
  validateUNetConfig(o.unet, o.height, o.width);
  const specs = unetParamSpecs(o.unet);
  const trainable = specs.filter((s) => s.trainable);

  const g = new Graph('unet_train_step', TRAIN_OPSET);
  const image = g.input(IO.image, 'float32', [BATCH_DIM, o.unet.inChannels, o.height, o.width]);
  const mask = g.input(IO.mask, 'float32', [BATCH_DIM, o.unet.classes, o.height, o.width]);
  const stepSize = g.input(IO.stepSize, 'float32', []);
  const invSqrtBc2 = g.input(IO.invSqrtBc2, 'float32', []);
  const params = new Map(specs.map((s) => [s.name, g.input(s.name, 'float32', s.dims)]));
  const moments = new Map(trainable.map((s) => [s.name, { m: g.input(IO.m(s.name), 'float32', s.dims), v: g.input(IO.v(s.name), 'float32', s.dims) }]));

  const { logits, runningStats } = buildUNetForward(g, o.unet, image, (n) => params.get(n)!, 'train');
  const objective = { weights: o.loss, diceSmooth: o.diceSmooth, ...(o.softmax ? { softmax: o.softmax } : {}) };
  const loss = buildObjectiveLoss(g, logits, mask, objective);
  const termNames = lossSet(o.softmax !== undefined).names;
  const grads = gradients(
    g,
    loss.total,
    trainable.map((s) => params.get(s.name)!),
    o.grad,
  );

  g.output(loss.total, TOTAL);
  for (const name of termNames) g.output(loss.terms[name]!, name);
  for (const s of trainable) {
    const { m, v } = moments.get(s.name)!;
    const u = adamUpdate(g, params.get(s.name)!, grads.get(s.name)!, m, v, stepSize, invSqrtBc2, o.adam);
    g.output(u.p2, IO.next(s.name));
    g.output(u.m2, IO.next(IO.m(s.name)));
    g.output(u.v2, IO.next(IO.v(s.name)));
  }
  for (const s of specs.filter((x) => !x.trainable)) g.output(runningStats.get(s.name)!, IO.next(s.name));

  const p = new Graph('unet_predict', TRAIN_OPSET);
  const pImage = p.input(IO.image, 'float32', [BATCH_DIM, o.unet.inChannels, o.height, o.width]);
  const pParams = new Map(specs.map((s) => [s.name, p.input(s.name, 'float32', s.dims)]));
  const fwd = buildUNetForward(p, o.unet, pImage, (n) => pParams.get(n)!, 'inference');
  p.output(fwd.logits, IO.predictLogits);

  // The same objective over logits from outside (predict's, inference BatchNorm): the validation loss.
  const l = new Graph('unet_loss', TRAIN_OPSET);
  const lLogits = l.input(IO.lossLogits, 'float32', [BATCH_DIM, o.unet.classes, o.height, o.width]);
  const lMask = l.input(IO.mask, 'float32', [BATCH_DIM, o.unet.classes, o.height, o.width]);
  const lLoss = buildObjectiveLoss(l, lLogits, lMask, objective);
  l.output(lLoss.total, TOTAL);
  for (const name of termNames) l.output(lLoss.terms[name]!, name);

  const stateNames = [...specs.map((s) => s.name), ...trainable.flatMap((s) => [IO.m(s.name), IO.v(s.name)])];
  return { train: encodeModel(g), predict: encodeModel(p), loss: encodeModel(l), specs, stateNames };
}
