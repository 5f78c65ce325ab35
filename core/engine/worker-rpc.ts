/**
 * The message envelope between the main thread and a pool worker, and how errors cross it: structured
 * clone keeps only plain fields, so a thrown error is sent as core/errors.ts's WireError and rebuilt on
 * the main thread as the same registered class with its code and fields (a DicomError, PreprocessError
 * or RleError must reach the HTTP layer as itself: each is the input's fault, not a server fault).
 * Anything unregistered (a TypeError, an ORT exception) becomes an InferenceError.
 */
import { parentPort, type TransferListItem } from 'node:worker_threads';
import { fromWireError as revive, toWireError, type WireError } from '../errors.ts';
import { InferenceError } from './errors.ts';
// The core errors a worker can throw register themselves when their module loads; load them here too
// so the main thread knows every class a worker may send even if it never imports the module itself.
import '../dicom/errors.ts';
import '../preprocess/errors.ts';
import '../rle/errors.ts';

export { toWireError, type WireError };

export interface RpcRequest<M = unknown> {
  id: number;
  msg: M;
}

export type RpcResponse<R = unknown> = { id: number; ok: true; result: R } | { id: number; ok: false; error: WireError };

/** A handler's answer: the result, plus the buffers to transfer rather than copy. */
export interface Reply<R> {
  result: R;
  transfer?: TransferListItem[];
}

/** The registered class's instance, or an InferenceError (500) carrying the message. */
export function fromWireError(w: WireError): Error {
  return revive(w, (x) => new InferenceError(x.message));
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
