/**
 * The message envelope between the main thread and a pool worker, and how errors cross it: structured
 * clone keeps only plain fields, so typed errors are sent as {name, code, message, details} and rebuilt
 * as the same class on the main thread (DicomError and PreprocessError must reach the HTTP layer as
 * themselves: both are image problems, not server faults).
 */
import { parentPort, type TransferListItem } from 'node:worker_threads';
import { DicomError, type DicomErrorCode } from '../dicom/errors.ts';
import { PreprocessError, type PreprocessErrorCode } from '../preprocess/errors.ts';
import { InferenceError, InvalidRequestError, ModelInvalidError } from './errors.ts';

export interface RpcRequest<M = unknown> {
  id: number;
  msg: M;
}

export interface WireError {
  name: string;
  message: string;
  code?: string;
  details?: Record<string, unknown>;
  field?: string;
  model?: string;
}

export type RpcResponse<R = unknown> = { id: number; ok: true; result: R } | { id: number; ok: false; error: WireError };

/** A handler's answer: the result, plus the buffers to transfer rather than copy. */
export interface Reply<R> {
  result: R;
  transfer?: TransferListItem[];
}

export function toWireError(e: unknown): WireError {
  if (e instanceof Error) {
    const x = e as Error & { code?: unknown; details?: unknown; field?: unknown; model?: unknown };
    const w: WireError = { name: x.name, message: x.message };
    if (typeof x.code === 'string') w.code = x.code;
    if (x.details && typeof x.details === 'object') w.details = x.details as Record<string, unknown>;
    if (typeof x.field === 'string') w.field = x.field;
    if (typeof x.model === 'string') w.model = x.model;
    return w;
  }
  return { name: 'Error', message: String(e) };
}

export function fromWireError(w: WireError): Error {
  switch (w.name) {
    case 'DicomError':
      return new DicomError(w.code as DicomErrorCode, w.message, w.details ?? {});
    case 'PreprocessError':
      return new PreprocessError(w.code as PreprocessErrorCode, w.message);
    case 'ModelInvalidError':
      return new ModelInvalidError(w.model ?? '', w.message);
    case 'InvalidRequestError':
      return new InvalidRequestError(w.field ?? '', w.message);
    default:
      return new InferenceError(w.message);
  }
}

/**
 * Worker side: answer each request with `handler`, one at a time in arrival order (a session must not
 * run twice at once, and loads must precede the requests that need them).
 */
export function serve<M>(handler: (msg: M) => Promise<Reply<unknown>>): void {
  const port = parentPort;
  if (!port) throw new Error('serve() must run inside a worker thread');
  let chain: Promise<void> = Promise.resolve();
  port.on('message', (req: RpcRequest<M>) => {
    chain = chain.then(async () => {
      try {
        const { result, transfer } = await handler(req.msg);
        port.postMessage({ id: req.id, ok: true, result } satisfies RpcResponse, transfer ?? []);
      } catch (e) {
        port.postMessage({ id: req.id, ok: false, error: toWireError(e) } satisfies RpcResponse);
      }
    });
  });
}
