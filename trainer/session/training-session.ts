/**
 * The training engine's public API (used by the trainer shell and, for buildUNetOnnx, the service tests).
 */
export type {
  AdamConfig,
  Checkpoint,
  CheckpointConfig,
  LossWeights,
  StepResult,
  TrainingSession,
  TrainingSessionOptions,
  UNetConfig,
  UpsampleMode,
} from './types.ts';
export { buildUNetOnnx } from '../model/export.ts';
export { UNetConfigError } from '../model/unet.ts';
