import type { Logger } from 'pino';
import type { LossWeights } from '../model/loss.ts';
import type { LossResult, TermValues } from '../model/loss-set.ts';
import type { UNetConfig } from '../model/unet.ts';

export type { UNetConfig, UpsampleMode } from '../model/unet.ts';
export type { LossName, LossValues, LossWeights } from '../model/loss.ts';

export interface AdamConfig {
  beta1: number;
  beta2: number;
  eps: number;
  /** L2 penalty added to the gradient (PyTorch Adam's weight_decay, not AdamW). */
  weightDecay: number;
}

/** Softmax training: mutually exclusive classes, one of them the background. */
export interface SoftmaxObjective {
  /** Index of the background channel (the multi-class Dice leaves it out). */
  background: number;
}

export interface TrainingSessionOptions {
  unet: UNetConfig;
  height: number;
  width: number;
  /** Term weights of the objective's loss: LossWeights (bce/dice/focal), or with `softmax` ce/dice/focal. */
  loss: LossWeights | TermValues;
  /** Train a softmax model with the multi-class loss (model/multiclass-loss.ts); default: the binary ComboLoss on per-channel sigmoids. */
  softmax?: SoftmaxObjective;
  adam?: Partial<AdamConfig>;
  device: 'cpu' | 'cuda';
  deviceId?: number;
  seed: number;
  intraOpThreads?: number;
  /**
   * Let ORT's intra-op threads busy-wait between kernels (ORT's default). Off by default here: on this
   * 2-core machine shared with other processes it burnt ~0.6 CPU-s per step and made steps slower.
   */
  intraOpSpinning?: boolean;
  logger?: Logger;
  /**
   * Dice smoothing term (numerator and denominator). Default 1; the SIIM winner's Losses.py uses 1e-5,
   * which differs only when the batch has (almost) no predicted or true foreground.
   */
  diceSmooth?: number;
  /** ORT per-node profiling of the training step (bench use); the profile file path is logged on release. */
  enableProfiling?: boolean;
}

/** The total under `loss`, and each term of the objective's loss under its name. */
export type StepResult = LossResult;

export interface CheckpointConfig {
  unet: UNetConfig;
  height: number;
  width: number;
  loss: LossWeights | TermValues;
  softmax?: SoftmaxObjective;
  adam: AdamConfig;
  diceSmooth: number;
}

export interface Checkpoint {
  format: 'unet-checkpoint-v1';
  config: CheckpointConfig;
  step: number;
  /** Weights and BN running stats under their parameter names; Adam moments as `adam.m.<name>` / `adam.v.<name>`. */
  tensors: Record<string, { dims: number[]; data: Float32Array }>;
}

export interface TrainingSession {
  /** What actually runs (after fallback). */
  readonly executionProvider: 'cpu' | 'cuda';
  readonly parameterCount: number;
  /** images: N*C*H*W float32; masks: N*classes*H*W in {0,1} (softmax: one-hot); lr for this step (scheduler lives in the shell). */
  step(images: Float32Array, masks: Float32Array, batch: number, lr: number): Promise<StepResult>;
  /** Logits (what the exported model emits) with BatchNorm in inference mode (running stats): N*classes*H*W. */
  predict(images: Float32Array, batch: number): Promise<Float32Array>;
  /**
   * The training objective (same terms, weights, Dice smoothing, clamp) over given logits, e.g.
   * `predict`'s on a validation batch: no forward pass, no state change. masks as for `step`.
   */
  loss(logits: Float32Array, masks: Float32Array, batch: number): Promise<StepResult>;
  checkpoint(): Checkpoint;
  /** Throws CheckpointMismatchError when the checkpoint's config differs from this session's. */
  restore(ckpt: Checkpoint): void;
  /** Inference-form forward graph, trained weights as initializers, input 'image' [N,C,H,W], output 'logits'. */
  exportOnnx(opts?: { foldBatchNorm?: boolean }): Uint8Array;
  release(): Promise<void>;
}
