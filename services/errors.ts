import type { FastifyError } from 'fastify';
import fp from 'fastify-plugin';
import { isDicomError, type DicomError } from '../core/dicom/errors.ts';
import { resolve } from 'node:path';
import { CodedError } from '../core/errors.ts';
import {
  DeadlineExceededError,
  EngineError,
  InvalidRequestError,
  ModelInvalidError,
  ModelNotFoundError,
  NotReadyError,
  OverloadedError,
  RequestCancelledError,
  WorkerRestartedError,
} from '../core/engine/errors.ts';
import { PreprocessError } from '../core/preprocess/errors.ts';
import { RleError } from '../core/rle/index.ts';
import { Problem, sendProblem, type ProblemKind } from './problem.ts';
import { StoreUnavailableError } from './store/types.ts';

/** What the error handler knows besides the error: the models a request could have named. */
export interface ProblemContext {
  /** `name` or `name:version` of every model in the repository, for a 404's "available: ...". */
  availableModels?: () => string[];
}

/**
 * Fastify's and its plugins' internal codes -> ours. A framework code never reaches a client as our
 * `code` (it would tie clients to Fastify's internals); anything not listed here becomes HTTP_<status>.
 */
const FRAMEWORK_CODES: Record<string, { kind: ProblemKind; code: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { kind: 'payload-too-large', code: 'BODY_TOO_LARGE' },
  FST_REQ_FILE_TOO_LARGE: { kind: 'payload-too-large', code: 'FILE_TOO_LARGE' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { kind: 'unsupported-media-type', code: 'UNSUPPORTED_MEDIA_TYPE' },
  FST_INVALID_MULTIPART_CONTENT_TYPE: { kind: 'unsupported-media-type', code: 'UNSUPPORTED_MEDIA_TYPE' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { kind: 'bad-request', code: 'BAD_CONTENT_LENGTH' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { kind: 'bad-request', code: 'EMPTY_BODY' },
  FST_ERR_CTP_INVALID_JSON_BODY: { kind: 'bad-request', code: 'INVALID_JSON' },
  FST_ERR_BAD_URL: { kind: 'bad-request', code: 'BAD_URL' },
  FST_ERR_MAX_PARAM_LENGTH: { kind: 'uri-too-long', code: 'URI_TOO_LONG' },
  FST_PARTS_LIMIT: { kind: 'bad-multipart', code: 'MULTIPART_LIMIT' },
  FST_FILES_LIMIT: { kind: 'bad-multipart', code: 'MULTIPART_LIMIT' },
  FST_FIELDS_LIMIT: { kind: 'bad-multipart', code: 'MULTIPART_LIMIT' },
  FST_PROTO_VIOLATION: { kind: 'bad-multipart', code: 'BAD_MULTIPART' },
  FST_NO_FORM_DATA: { kind: 'bad-multipart', code: 'BAD_MULTIPART' },
  FST_ERR_RATE_LIMITED: { kind: 'too-many-requests', code: 'RATE_LIMITED' },
};

const FILE_PATH = /(?<![\w:.])\/(?:[^\s'"`:;,()]+\/)+([^\s'"`:;,()]*)/g;

/**
 * `text` without file system paths (defect 8: responses name the model and version, never where the
 * repository lives): `root` (the model repository) is cut from paths under it, leaving
 * `<name>/<version>/<file>`; any other absolute path is reduced to its file name.
 */
export function redactPaths(text: string, root?: string): string {
  let out = text;
  if (root) {
    const abs = resolve(root);
    out = out.split(abs + '/').join('').split(abs).join('<repository>');
  }
  return out.replace(FILE_PATH, (_m, base: string) => base || '<path>');
}

/**
 * Maps every error a request can raise to a Problem. The rule is that bad input never becomes a 500:
 * anything the client can cause has an explicit 4xx mapping here, and only genuine server faults
 * (worker crash, ORT failure, bugs) fall through to 500. Every core error is a CodedError whose
 * `status` is the default mapping; `retryAfterSeconds`, when it has one, becomes Retry-After.
 */
export function toProblem(err: unknown, ctx: ProblemContext = {}): Problem {
  if (err instanceof Problem) return err;
  if (isDicomError(err)) return dicomProblem(err);
  if (err instanceof RleError) return new Problem('bad-rle', err.message, { code: 'BAD_RLE' });
  if (err instanceof PreprocessError) return preprocessProblem(err);
  if (err instanceof EngineError) return engineProblem(err, ctx);
  if (err instanceof StoreUnavailableError) return new Problem('store-unavailable', err.message, { code: 'STORE_UNAVAILABLE', retryAfterSeconds: err.retryAfterSeconds });
  if (err instanceof CodedError) return codedProblem(err);
  const fe = err as Partial<FastifyError> & { part?: unknown };
  if (fe && typeof fe === 'object') {
    if (fe.validation) return new Problem('bad-request', fe.message ?? 'invalid request', { code: 'VALIDATION' });
    const known = typeof fe.code === 'string' ? FRAMEWORK_CODES[fe.code] : undefined;
    if (known) {
      const detail =
        known.kind === 'unsupported-media-type'
          ? 'this Content-Type is not accepted here; POST /segment takes application/dicom (or application/octet-stream), multipart/form-data, or multipart/related; type="application/dicom" (a series)'
          : (fe.message ?? 'bad request');
      return new Problem(known.kind, detail, { code: known.code });
    }
    // busboy reports malformed multipart with plain Errors and no code.
    if (typeof fe.message === 'string' && /^(Multipart: |Unexpected end of (form|multipart)|Malformed part header|Part terminated early)/.test(fe.message)) {
      return new Problem('bad-multipart', fe.message, { code: 'MALFORMED_MULTIPART' });
    }
    const status = typeof fe.statusCode === 'number' ? fe.statusCode : undefined;
    if (status === 408) return new Problem('request-timeout', fe.message ?? 'the request body did not arrive in time', { code: 'BODY_TIMEOUT' });
    if (status === 429) return new Problem('too-many-requests', fe.message ?? 'rate limit exceeded', { code: 'RATE_LIMITED' });
    if (status && status >= 400 && status < 500) return new Problem('http', fe.message ?? 'bad request', { status, code: `HTTP_${status}` });
  }
  return new Problem('internal-error', 'the server failed to process this request; the failure was logged', { code: 'INTERNAL' });
}

/** A core error with no mapping of its own: its status, its code, its retry hint. */
function codedProblem(err: CodedError): Problem {
  const retryAfterSeconds = retryHint(err);
  if (err.status >= 500) {
    if (err.status === 503) return new Problem('http', err.message, { status: 503, code: err.code, retryAfterSeconds: retryAfterSeconds ?? 1 });
    return new Problem('internal-error', 'the server failed to process this request; the failure was logged', { code: err.code });
  }
  return new Problem('http', err.message, { status: err.status, code: err.code, ...(retryAfterSeconds ? { retryAfterSeconds } : {}) });
}

const retryHint = (err: unknown): number | undefined => {
  const r = (err as { retryAfterSeconds?: unknown }).retryAfterSeconds;
  return typeof r === 'number' && Number.isFinite(r) && r > 0 ? r : undefined;
};

function dicomProblem(err: DicomError): Problem {
  switch (err.code) {
    case 'NOT_DICOM':
      return new Problem('not-dicom', err.message, { code: err.code });
    case 'UNSUPPORTED_TRANSFER_SYNTAX': {
      const uid = typeof err.details.transferSyntaxUid === 'string' ? err.details.transferSyntaxUid : undefined;
      const detail = uid && !err.message.includes(uid) ? `${err.message} (${uid})` : err.message;
      return new Problem('unsupported-transfer-syntax', detail, { code: err.code });
    }
    case 'TOO_LARGE':
      return new Problem('image-too-large', err.message, { code: err.code });
    default:
      return new Problem('unprocessable-dicom', err.message, { code: err.code });
  }
}

/**
 * An image that decodes but cannot be turned into the model's input is the image's problem (422);
 * a spec or array-shape failure comes from the model or our own code and stays a 500.
 */
function preprocessProblem(err: PreprocessError): Problem {
  if (err.code === 'INVALID_IMAGE') return new Problem('unprocessable-dicom', `the image cannot be preprocessed: ${err.message}`, { code: err.code });
  return new Problem('internal-error', 'preprocessing failed; the failure was logged', { code: err.code });
}

function engineProblem(err: EngineError, ctx: ProblemContext): Problem {
  const code = err.code;
  const retryAfterSeconds = retryHint(err) ?? (err.status === 503 ? 1 : undefined);
  const retry = retryAfterSeconds ? { retryAfterSeconds } : {};
  if (err instanceof ModelNotFoundError) {
    const available = ctx.availableModels?.() ?? [];
    return new Problem('model-not-found', `${err.message}; available models: ${available.length > 0 ? available.join(', ') : '(none)'}`, { code });
  }
  if (err instanceof InvalidRequestError) {
    const detail = err.message.includes(err.field) ? err.message : `${err.field}: ${err.message}`;
    return new Problem('bad-request', detail, { code });
  }
  if (err instanceof ModelInvalidError) return new Problem('model-invalid', redactPaths(err.message), { code });
  if (err instanceof OverloadedError) return new Problem('overloaded', err.message, { code, ...retry });
  if (err instanceof NotReadyError) return new Problem('not-ready', err.message, { code, ...retry });
  if (err instanceof DeadlineExceededError) return new Problem('deadline-exceeded', `${err.message} (stage: ${err.stage})`, { code, ...retry });
  // Before WorkerCrashedError: a WorkerRestartedError is one, but nothing of the request ran (retry).
  if (err instanceof WorkerRestartedError) return new Problem('worker-restarted', err.message, { code, ...retry });
  if (err instanceof RequestCancelledError) return new Problem('cancelled', err.message, { code });
  if (err.status === 503) return new Problem('http', err.message, { status: 503, code, ...retry });
  return new Problem('internal-error', 'inference failed; the failure was logged', { code });
}

/** The keys a zod object schema accepts (its shape), or undefined for anything else. */
function keysOf(schema: unknown): string[] | undefined {
  const shape = (schema as { shape?: unknown } | undefined)?.shape;
  return shape && typeof shape === 'object' ? Object.keys(shape) : undefined;
}

/**
 * A validation failure that names each parameter at fault: an unknown key gets "unknown querystring
 * parameter "treshold"; allowed: ..." (issue 14, item 3); other issues keep zod's message after the
 * parameter's path (an enum's message already lists the allowed values).
 */
function validationDetail(err: FastifyError, schema: Record<string, unknown> | undefined): string | undefined {
  const context = err.validationContext ?? 'request';
  const parts: string[] = [];
  for (const v of err.validation ?? []) {
    const keys = (v.params as { keys?: unknown } | undefined)?.keys;
    if (v.keyword === 'unrecognized_keys' && Array.isArray(keys)) {
      const allowed = keysOf(schema?.[context]);
      for (const k of keys) {
        parts.push(`unknown ${context} parameter ${JSON.stringify(k)}${allowed ? `; allowed: ${allowed.length > 0 ? allowed.join(', ') : '(none)'}` : ''}`);
      }
      continue;
    }
    const path = v.instancePath && v.instancePath !== '/' ? v.instancePath : '';
    parts.push(`${context}${path}: ${v.message ?? 'invalid'}`);
  }
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/** 5xx that are a declared, temporary state (Retry-After), not a fault: logged at info, not error. */
const DECLARED_503: ReadonlySet<string> = new Set(['overloaded', 'not-ready', 'store-unavailable', 'deadline-exceeded', 'worker-restarted']);

/**
 * The error and not-found handlers, on the root instance (fastify-plugin: not encapsulated) so every
 * route and plugin shares them. Every problem body is then serialized through the problem schema
 * each route declares for that status.
 */
export default fp(
  async (app) => {
    app.setErrorHandler((err, request, reply) => {
      // Already answered (e.g. a body that timed out and was answered 408, whose stream then failed).
      if (reply.sent) return;
      const engine = (request.server as { lifecycle?: { engine?: { listing(): Array<{ name: string; version: string }> } } }).lifecycle?.engine;
      const problem = toProblem(err, {
        availableModels: () => [...new Set((engine?.listing() ?? []).map((m) => m.name))],
      });
      if ((err as Partial<FastifyError>).validation) {
        const detail = validationDetail(err as FastifyError, request.routeOptions.schema as Record<string, unknown> | undefined);
        if (detail) return sendProblem(reply, new Problem('bad-request', detail, { code: 'VALIDATION' }));
      }
      if (problem.kind === 'cancelled') {
        // The client went away: nobody reads an answer. Logged at info, counted as 499 by onResponse.
        // onResponse never runs for a closed socket, so the request is counted here.
        const route = request.routeOptions.url ?? 'unmatched';
        (request.server as { metrics?: { httpRequest(m: string, r: string, s: number, sec: number): void } }).metrics?.httpRequest(request.method, route, 499, reply.elapsedTime / 1000);
        request.log.info({ method: request.method, route, status: 499, code: problem.options.code, ms: Math.round(reply.elapsedTime) }, 'request cancelled: the client closed the connection');
        return reply.code(499).send();
      }
      if (problem.status >= 500 && !DECLARED_503.has(problem.kind) && !(problem.kind === 'http' && problem.status === 503)) {
        request.log.error({ err }, 'request failed');
      } else {
        request.log.info({ status: problem.status, code: problem.options.code ?? problem.kind }, `request rejected: ${problem.detail}`);
      }
      return sendProblem(reply, problem);
    });
    app.setNotFoundHandler((request, reply) => {
      return sendProblem(reply, new Problem('not-found', `no route for ${request.method} ${request.url.split('?')[0]}`));
    });
  },
  { fastify: '5.x', name: 'problem-details' },
);
