/**
 * Typed engine errors, each a registered CodedError (core/errors.ts) so it crosses the worker boundary
 * as itself. `status` is the HTTP layer's default: ModelNotFoundError 404, InvalidRequestError 400,
 * OverloadedError / NotReadyError 503 (+ Retry-After), WorkerCrashedError / InferenceError /
 * ModelInvalidError 500. Core errors raised in a worker (DicomError, PreprocessError, RleError, ...)
 * reach the caller with their own class and code.
 */
import { CodedError, registerError } from '../errors.ts';
import type { ModelManifest } from '../manifest.ts';

export type EngineErrorCode =
  | 'MODEL_NOT_FOUND'
  | 'OVERLOADED'
  | 'NOT_READY'
  | 'INVALID_REQUEST'
  | 'WORKER_CRASHED'
  | 'INFERENCE_FAILED'
  | 'MODEL_INVALID';

const ENGINE_STATUS: Record<EngineErrorCode, number> = {
  MODEL_NOT_FOUND: 404,
  OVERLOADED: 503,
  NOT_READY: 503,
  INVALID_REQUEST: 400,
  WORKER_CRASHED: 500,
  INFERENCE_FAILED: 500,
  MODEL_INVALID: 500,
};

export class EngineError extends CodedError<EngineErrorCode> {
  constructor(code: EngineErrorCode, message: string) {
    super(code, message, ENGINE_STATUS[code]);
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

for (const cls of [EngineError, ModelNotFoundError, OverloadedError, NotReadyError, InvalidRequestError, WorkerCrashedError, InferenceError, ModelInvalidError]) registerError(cls);
