import type { FastifyError } from 'fastify';
import fp from 'fastify-plugin';
import { isDicomError, type DicomError } from '../core/dicom/errors.ts';
import { EngineError, InvalidRequestError, ModelNotFoundError, NotReadyError, OverloadedError } from '../core/engine/errors.ts';
import { PreprocessError } from '../core/preprocess/errors.ts';
import { RleError } from '../core/rle/index.ts';
import { Problem, sendProblem } from './problem.ts';
import { StoreUnavailableError } from './store/types.ts';

/**
 * Maps every error a request can raise to a Problem. The rule is that bad input never becomes a 500:
 * anything the client can cause has an explicit 4xx mapping here, and only genuine server faults
 * (worker crash, ORT failure, bugs) fall through to 500.
 */
export function toProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  if (isDicomError(err)) return dicomProblem(err);
  if (err instanceof RleError) return new Problem('bad-rle', err.message, { code: 'BAD_RLE' });
  if (err instanceof PreprocessError) return preprocessProblem(err);
  if (err instanceof EngineError) return engineProblem(err);
  if (err instanceof StoreUnavailableError) return new Problem('store-unavailable', err.message, { code: 'STORE_UNAVAILABLE', retryAfterSeconds: 1 });
  const fe = err as Partial<FastifyError> & { part?: unknown };
  if (fe && typeof fe === 'object') {
    if (fe.validation) return new Problem('bad-request', fe.message ?? 'invalid request', { code: 'VALIDATION' });
    switch (fe.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
      case 'FST_REQ_FILE_TOO_LARGE':
        return new Problem('payload-too-large', fe.message ?? 'request body is too large', { code: fe.code });
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
        return new Problem('unsupported-media-type', 'this Content-Type is not accepted here; POST /segment takes application/dicom (or application/octet-stream) or multipart/form-data', { code: fe.code });
      case 'FST_PARTS_LIMIT':
      case 'FST_FILES_LIMIT':
      case 'FST_FIELDS_LIMIT':
      case 'FST_PROTO_VIOLATION':
      case 'FST_NO_FORM_DATA':
        return new Problem('bad-multipart', fe.message ?? 'invalid multipart body', { code: fe.code });
      case 'FST_ERR_RATE_LIMITED':
        return new Problem('too-many-requests', fe.message ?? 'rate limit exceeded', { code: fe.code });
    }
    // busboy reports malformed multipart with plain Errors and no code.
    if (typeof fe.message === 'string' && /^(Multipart: |Unexpected end of (form|multipart)|Malformed part header|Part terminated early)/.test(fe.message)) {
      return new Problem('bad-multipart', fe.message, { code: 'MALFORMED_MULTIPART' });
    }
    const status = typeof fe.statusCode === 'number' ? fe.statusCode : undefined;
    if (status === 429) return new Problem('too-many-requests', fe.message ?? 'rate limit exceeded', { code: fe.code });
    if (status && status >= 400 && status < 500) return new Problem('http', fe.message ?? 'bad request', { status, code: fe.code });
  }
  return new Problem('internal-error', 'the server failed to process this request; the failure was logged', { code: 'INTERNAL' });
}

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

function engineProblem(err: EngineError): Problem {
  if (err instanceof ModelNotFoundError) return new Problem('model-not-found', err.message, { code: err.code });
  if (err instanceof InvalidRequestError) return new Problem('bad-request', err.message, { code: err.code });
  if (err instanceof OverloadedError) return new Problem('overloaded', err.message, { code: err.code, retryAfterSeconds: err.retryAfterSeconds });
  if (err instanceof NotReadyError) return new Problem('not-ready', err.message, { code: err.code, retryAfterSeconds: 1 });
  return new Problem('internal-error', 'inference failed; the failure was logged', { code: err.code });
}

/**
 * The error and not-found handlers, on the root instance (fastify-plugin: not encapsulated) so every
 * route and plugin shares them. Every problem body is then serialized through the problem schema
 * each route declares for that status.
 */
export default fp(
  async (app) => {
    app.setErrorHandler((err, request, reply) => {
      const problem = toProblem(err);
      if (problem.status >= 500 && problem.kind !== 'overloaded' && problem.kind !== 'not-ready' && problem.kind !== 'store-unavailable') {
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
