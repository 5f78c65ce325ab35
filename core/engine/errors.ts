/**
 * Typed engine errors, each a registered CodedError (core/errors.ts) so it crosses the worker boundary
 * as itself. `status` is the HTTP layer's default: ModelNotFoundError 404, InvalidRequestError 400,
 * ModelInvalidError 409 (the version exists but cannot be served), RequestCancelledError 499 (the
 * client went away; nothing is sent), OverloadedError / NotReadyError / DeadlineExceededError /
 * WorkerRestartedError 503 (+ Retry-After: `retryAfterSeconds`), WorkerCrashedError / InferenceError
 * 500. Core errors raised in a worker (DicomError, PreprocessError, RleError, ...) reach the caller
 * with their own class and code.
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
  | 'MODEL_INVALID'
  | 'DEADLINE_EXCEEDED'
  | 'WORKER_RESTARTED'
  | 'CANCELLED';

const ENGINE_STATUS: Record<EngineErrorCode, number> = {
  MODEL_NOT_FOUND: 404,
  OVERLOADED: 503,
  NOT_READY: 503,
  INVALID_REQUEST: 400,
  WORKER_CRASHED: 500,
  INFERENCE_FAILED: 500,
  // The version exists but cannot be served in its current state (manifest, checksum, graph): the
  // request conflicts with the repository's state until someone fixes the files and reloads.
  MODEL_INVALID: 409,
  // The server did not finish in the time it allows itself: like OVERLOADED, a temporary condition of
  // the server (Retry-After), not a gateway's upstream failure (504) nor a slow client (408).
  DEADLINE_EXCEEDED: 503,
  // Nothing of the request ran: its task waited in a worker that had to be replaced. Retry.
  WORKER_RESTARTED: 503,
  // The caller aborted (client gone): nginx's 499, never actually sent to anyone.
  CANCELLED: 499,
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
  /** A hint for the client's Retry-After, whole seconds >= 1. */
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds = 1) {
    super('NOT_READY', message);
    this.name = 'NotReadyError';
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterSeconds));
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
  constructor(message: string, code: 'WORKER_CRASHED' | 'WORKER_RESTARTED' = 'WORKER_CRASHED') {
    super(code, message);
    this.name = 'WorkerCrashedError';
  }
}

/**
 * The worker holding this request's task died or was stopped (another task crashed it or ran past its
 * deadline) before it started the task: nothing of the request ran, and a retry may well succeed.
 * A WorkerCrashedError (same handling where callers only know that one) with code WORKER_RESTARTED, 503.
 */
export class WorkerRestartedError extends WorkerCrashedError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds = 1) {
    super(message, 'WORKER_RESTARTED');
    this.name = 'WorkerRestartedError';
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterSeconds));
  }
}

/** Which deadline passed: one worker task (decode + preprocess, or a batch's inference + postprocess), or the whole request. */
export type DeadlineStage = 'prepare' | 'infer' | 'postprocess' | 'request';

/**
 * A deadline passed (EngineConfig.taskTimeoutMs for one worker task, requestTimeoutMs for the whole
 * request). A task past its deadline had its worker terminated and replaced: a worker stuck in
 * synchronous JS or wasm cannot be interrupted any other way.
 */
export class DeadlineExceededError extends EngineError {
  readonly stage: DeadlineStage;
  readonly deadlineMs: number;
  readonly retryAfterSeconds: number;
  constructor(stage: DeadlineStage, deadlineMs: number, message: string, retryAfterSeconds = 1) {
    super('DEADLINE_EXCEEDED', message);
    this.name = 'DeadlineExceededError';
    this.stage = stage;
    this.deadlineMs = deadlineMs;
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterSeconds));
  }
}

/** The caller aborted the request (SegmentRequest.signal): dropped from the queue, or its result discarded. */
export class RequestCancelledError extends EngineError {
  constructor(message = 'the request was cancelled by its caller') {
    super('CANCELLED', message);
    this.name = 'RequestCancelledError';
  }
}

/** onnxruntime (or another worker-side step) failed for this request. */
export class InferenceError extends EngineError {
  constructor(message: string) {
    super('INFERENCE_FAILED', message);
    this.name = 'InferenceError';
  }
}

/**
 * A model version in the repository cannot be served (manifest, checksum, files, IO mismatch). 409: a
 * request naming such a version conflicts with the repository's state (fix the files, then reload).
 */
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

for (const cls of [
  EngineError,
  ModelNotFoundError,
  OverloadedError,
  NotReadyError,
  InvalidRequestError,
  WorkerCrashedError,
  WorkerRestartedError,
  InferenceError,
  ModelInvalidError,
  DeadlineExceededError,
  RequestCancelledError,
]) registerError(cls);
