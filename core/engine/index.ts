export { EngineConfigSchema, MAX_PIXELS_DEFAULT, type EngineConfig, type EngineConfigInput } from './config.ts';
export {
  Engine,
  type EngineObserver,
  type ModelInfo,
  type ModelListing,
  type InvalidModelInfo,
  type ModelStatus,
  type SegmentRequest,
  type SegmentResult,
  type SegmentResponse,
  type TensorImageResult,
  type TensorRequest,
  type TensorResult,
  type ReloadResult,
} from './engine.ts';
export {
  EngineError,
  ModelNotFoundError,
  OverloadedError,
  NotReadyError,
  InvalidRequestError,
  WorkerCrashedError,
  WorkerRestartedError,
  DeadlineExceededError,
  RequestCancelledError,
  InferenceError,
  ModelInvalidError,
  type EngineErrorCode,
  type DeadlineStage,
} from './errors.ts';
export { parseModelRef, compareVersions, listRepository, readModelVersion, checkSessionIo } from './repository.ts';
export { planThreads, type Provider } from '../runtime/session.ts';
export { makePreview, MAX_PREVIEW_SIDE, type Preview, type PreviewSource } from './preview.ts';
