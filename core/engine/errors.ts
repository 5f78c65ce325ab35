/**
 * Typed engine errors. The HTTP layer maps them by class (and `code`) to statuses:
 * ModelNotFoundError -> 404, InvalidRequestError -> 400, OverloadedError -> 429/503 + Retry-After,
 * NotReadyError -> 503, WorkerCrashedError / InferenceError -> 500. DicomError from core/dicom and
 * PreprocessError from core/preprocess pass through the engine with their class and code.
 */
import type { ModelManifest } from '../manifest.ts';

export type EngineErrorCode =
  | 'MODEL_NOT_FOUND'
  | 'OVERLOADED'
  | 'NOT_READY'
  | 'INVALID_REQUEST'
  | 'WORKER_CRASHED'
  | 'INFERENCE_FAILED'
  | 'MODEL_INVALID';

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  constructor(code: EngineErrorCode, message: string) {
    super(message);
    this.name = 'EngineError';
    this.code = code;
  }
}

export class ModelNotFoundError extends EngineError {
  readonly model: string;
  readonly version: string | undefined;
  constructor(model: string, version?: string, detail?: string) {
    super('MODEL_NOT_FOUND', `model ${version ? `${model}:${version}` : model} not found${detail ? `: ${detail}` : ''}`);
    this.name = 'ModelNotFoundError';
    this.model = model;
    this.version = version;
  }
}

export class OverloadedError extends EngineError {
  /** A hint for the client's Retry-After, whole seconds >= 1. */
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super('OVERLOADED', message);
    this.name = 'OverloadedError';
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterSeconds));
  }
}

export class NotReadyError extends EngineError {
  constructor(message: string) {
    super('NOT_READY', message);
    this.name = 'NotReadyError';
  }
}

export class InvalidRequestError extends EngineError {
  /** The request field at fault, e.g. 'threshold'. */
  readonly field: string;
  constructor(field: string, message: string) {
    super('INVALID_REQUEST', message);
    this.name = 'InvalidRequestError';
    this.field = field;
  }
}

/** An inference worker died (native crash, OOM, exit) while holding this request. */
export class WorkerCrashedError extends EngineError {
  constructor(message: string) {
    super('WORKER_CRASHED', message);
    this.name = 'WorkerCrashedError';
  }
}

/** onnxruntime (or another worker-side step) failed for this request. */
export class InferenceError extends EngineError {
  constructor(message: string) {
    super('INFERENCE_FAILED', message);
    this.name = 'InferenceError';
  }
}

/** A model version in the repository cannot be served (manifest, checksum, files, IO mismatch). */
export class ModelInvalidError extends EngineError {
  readonly model: string;
  /** The manifest, when it parsed (e.g. a checksum or IO mismatch), so listings can still show it. */
  readonly manifest: ModelManifest | undefined;
  constructor(model: string, message: string, manifest?: ModelManifest) {
    super('MODEL_INVALID', message);
    this.name = 'ModelInvalidError';
    this.model = model;
    this.manifest = manifest;
  }
}
