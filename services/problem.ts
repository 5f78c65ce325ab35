import { STATUS_CODES } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PROBLEM_CONTENT_TYPE, type ProblemBody } from './contract/problem.ts';

export { PROBLEM_CONTENT_TYPE, type ProblemBody };

/**
 * RFC 9457 problem details. Every error the service returns goes through `Problem` so clients see
 * one shape: {type, title, status, detail, instance} plus a stable `code` extension. The `type`
 * URIs are URNs (identifiers, not links). The body's schema is ProblemSchema (contract/problem.ts).
 */

export const PROBLEM_TYPES = {
  'bad-request': { status: 400, title: 'Bad request' },
  'bad-rle': { status: 400, title: 'Invalid run-length encoding' },
  'bad-multipart': { status: 400, title: 'Invalid multipart body' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  'not-found': { status: 404, title: 'Not found' },
  'model-not-found': { status: 404, title: 'Model not found' },
  'request-timeout': { status: 408, title: 'Request timeout' },
  'model-invalid': { status: 409, title: 'Model version cannot be served' },
  'result-not-found': { status: 404, title: 'Segmentation result not found' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  'payload-too-large': { status: 413, title: 'Payload too large' },
  'uri-too-long': { status: 414, title: 'URI too long' },
  'image-too-large': { status: 413, title: 'Image too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'not-dicom': { status: 415, title: 'Not a DICOM file' },
  'unsupported-transfer-syntax': { status: 415, title: 'Unsupported transfer syntax' },
  'unprocessable-dicom': { status: 422, title: 'DICOM has no usable pixel data' },
  'too-many-requests': { status: 429, title: 'Too many requests' },
  // nginx's "client closed request": logged and counted, never received by anyone.
  cancelled: { status: 499, title: 'Client closed request' },
  'internal-error': { status: 500, title: 'Internal server error' },
  overloaded: { status: 503, title: 'Service overloaded' },
  'not-ready': { status: 503, title: 'Service not ready' },
  'store-unavailable': { status: 503, title: 'Result store unavailable' },
  'deadline-exceeded': { status: 503, title: 'Deadline exceeded' },
  'worker-restarted': { status: 503, title: 'Inference worker restarted' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemKind = keyof typeof PROBLEM_TYPES;

export const problemTypeUri = (kind: ProblemKind): string => `urn:unet-seg:problem:${kind}`;

export interface ProblemOptions {
  code?: string;
  retryAfterSeconds?: number;
  headers?: Record<string, string>;
  /** Only with kind 'http': the status of a plain HTTP error (type about:blank). */
  status?: number;
  /** The body's `instance` instead of the request path (e.g. a shortened form of an unusable URL). */
  instance?: string;
}

/** Our code for a problem that names none: its kind in upper snake case (`not-found` -> NOT_FOUND), HTTP_<status> for plain ones. */
export function defaultCode(kind: ProblemKind | 'http', status: number): string {
  return kind === 'http' ? `HTTP_${status}` : kind.toUpperCase().replace(/-/g, '_');
}

/** `kind: 'http'` is a plain HTTP error with type about:blank and the status's reason phrase as title (RFC 9457 4.2.1). */
export class Problem extends Error {
  readonly status: number;
  constructor(
    readonly kind: ProblemKind | 'http',
    readonly detail: string,
    readonly options: ProblemOptions = {},
  ) {
    super(detail);
    this.name = 'Problem';
    this.status = kind === 'http' ? (options.status ?? 500) : PROBLEM_TYPES[kind].status;
  }
}

export function problemBody(kind: ProblemKind | 'http', detail: string, request: FastifyRequest, code?: string, status?: number, instance?: string): ProblemBody {
  const s = kind === 'http' ? (status ?? 500) : PROBLEM_TYPES[kind].status;
  const body: ProblemBody = {
    type: kind === 'http' ? 'about:blank' : problemTypeUri(kind),
    title: kind === 'http' ? (STATUS_CODES[s] ?? 'Error') : PROBLEM_TYPES[kind].title,
    status: s,
    detail,
    // Path only: the query string may carry values we would rather not echo back.
    instance: instance ?? request.url.split('?')[0]!,
  };
  // Every problem carries a code of ours (never a framework's internal one).
  body.code = code ?? defaultCode(kind, s);
  if (request.url.startsWith('/v2/') || request.url === '/v2') body.error = detail;
  return body;
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  const headers = problem.options.headers ?? {};
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  if (problem.options.retryAfterSeconds !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(problem.options.retryAfterSeconds))));
  return reply
    .code(problem.status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(problemBody(problem.kind, problem.detail, reply.request, problem.options.code, problem.status, problem.options.instance));
}
