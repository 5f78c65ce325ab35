/**
 * What a training run reports as it goes (the observer) and when it is done (the result), and the
 * per-epoch record. Loss figures are keyed by the terms of model/loss.ts, so they follow LOSS_TERMS.
 */
import type { Logger } from 'pino';
import type { ExportResult } from '../export.ts';
import type { SampleDecoder, ScanCounts } from '../data/types.ts';
import type { TermValues } from '../model/loss-set.ts';

export interface EpochMetrics {
  /** 1-based. */
  epoch: number;
  lr: number;
  /** Mean total loss over the epoch's training images. */
  trainLoss: number;
  /** Mean of each loss term (unweighted), by name (the objective's terms: bce/dice/focal or ce/dice/focal). */
  trainLosses: TermValues;
  /**
   * The same objective on the validation fold (inference BatchNorm, no augmentation), its total and
   * terms. Absent in the history of checkpoints written before the validation loss was recorded.
   */
  valLoss?: number;
  valLosses?: TermValues;
  /** Mean per-image Dice at model resolution, threshold 0.5, empty/empty = 1 (softmax: each image's mean over non-background classes). */
  valDice: number;
  /** The all-empty baseline: the Dice a predict-nothing model gets on the validation fold (see validate.ts). */
  valBaseline?: number;
  /** The same through the service's path: probabilities resized to the original grid, then thresholded (NaN when skipped). */
  valDiceOriginal: number;
  /** Softmax models: mean Dice of each non-background class at model resolution, by label. */
  valClassDice?: Record<string, number>;
  /** ... and at original resolution (absent when skipped). */
  valClassDiceOriginal?: Record<string, number>;
  trainImagesPerSecond: number;
  seconds: number;
  best: boolean;
}

export interface BatchProgress {
  epoch: number;
  batch: number;
  batches: number;
  /** Running mean of the total loss this epoch. */
  loss: number;
  /** Running mean of each term. */
  losses: TermValues;
  imagesPerSecond: number;
  lr: number;
}

/** Progress and messages; every member optional (tests pass {}). */
export interface TrainObserver {
  info?(message: string): void;
  warn?(message: string): void;
  cacheStart?(total: number): void;
  cacheProgress?(done: number, total: number, hits: number): void;
  cacheEnd?(): void;
  epochStart?(epoch: number, epochs: number, batches: number, lr: number): void;
  batch?(p: BatchProgress): void;
  validationProgress?(done: number, total: number): void;
  epochEnd?(m: EpochMetrics): void;
}

export interface TrainDeps {
  /** Decoder override (tests count calls); defaults to the shared core decoders. */
  decode?: SampleDecoder;
  logger?: Logger;
}

export type RunCounts = ScanCounts & { unreadable: number; train: number; val: number; positives: number; trainPositives: number; valPositives: number };

export interface TrainResult {
  modelDir: string;
  files: { onnx: string; manifest: string; curves: string; overlays: string; scalars: string; log: string; lastCheckpoint: string; bestCheckpoint: string };
  bestEpoch: number;
  bestDice: number;
  bestDiceOriginal: number;
  /** Multi-class runs: the final model's mean Dice of each non-background class (model and original resolution). */
  bestClassDice?: Record<string, number>;
  bestClassDiceOriginal?: Record<string, number>;
  parity: ExportResult['parity'];
  executionProvider: 'cpu' | 'cuda';
  parameterCount: number;
  seconds: number;
  history: EpochMetrics[];
  counts: RunCounts;
  cache: { hits: number; misses: number; decodes: number; dir: string };
  resumedFrom?: { path: string; epochsDone: number };
}
