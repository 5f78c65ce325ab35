/**
 * C-STORE SCU: one DICOM instance (the series' SEG) to the configured destination AE, through
 * dcmjs-dimse's Client, with a bounded number of retries and exponential backoff. Every outcome is a
 * settled promise (never an unhandled rejection or a thrown event): ok, or a StoreScuError whose kind
 * says why (the association was rejected, the destination is unreachable or timed out, it answered a
 * failure status, or it accepted no presentation context for the SOP class).
 */
import dimse from 'dcmjs-dimse';
import dcmjs from 'dcmjs';
import type { DimseDestination } from './config.ts';

const { Client, Dataset } = dimse;
const { CStoreRequest } = dimse.requests;
const { Status } = dimse.constants;

export type StoreScuFailure = 'rejected' | 'unreachable' | 'timeout' | 'refused' | 'not-accepted' | 'aborted';

export class StoreScuError extends Error {
  /** Attempts made when storeWithRetry gave up. */
  attempts = 1;
  constructor(
    readonly kind: StoreScuFailure,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'StoreScuError';
  }
}

export interface StoreScuOptions {
  destination: DimseDestination;
  callingAeTitle: string;
  /** Connect + association negotiation limit, and the whole exchange's bound with idleTimeoutMs. */
  associationTimeoutMs: number;
  idleTimeoutMs: number;
  signal?: AbortSignal;
}

const hex = (n: number) => `0x${n.toString(16).padStart(4, '0').toUpperCase()}`;

/** Part 10 bytes -> the library's Dataset (naturalized by dcmjs; the library encodes it in the negotiated syntax). */
function datasetOf(part10: Uint8Array): InstanceType<typeof Dataset> {
  const ab = part10.buffer.slice(part10.byteOffset, part10.byteOffset + part10.byteLength) as ArrayBuffer;
  const dict = dcmjs.data.DicomMessage.readFile(ab);
  const meta = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.meta);
  return new Dataset(dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict), meta.TransferSyntaxUID);
}

/** One association carrying one C-STORE; resolves on a success (or warning) status. */
export function storeOnce(part10: Uint8Array, o: StoreScuOptions): Promise<void> {
  const d = o.destination;
  const where = `${d.aeTitle}@${d.host}:${d.port}`;
  return new Promise<void>((resolve, reject) => {
    if (o.signal?.aborted) return reject(new StoreScuError('aborted', `C-STORE to ${where}: cancelled`));
    let status: number | undefined;
    let failure: StoreScuError | undefined;
    let settled = false;
    const client = new Client();
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      o.signal?.removeEventListener('abort', onAbort);
      if (failure) return reject(failure);
      if (status === undefined) return reject(new StoreScuError('not-accepted', `C-STORE to ${where}: no answer (the destination accepted no presentation context for the SOP class, or closed the association)`));
      // 0000 success; 0xB000, 0xB007, 0xB006: warnings (stored, with coercion or elements discarded).
      if (status === Status.Success || (status & 0xf000) === 0xb000) return resolve();
      return reject(new StoreScuError('refused', `C-STORE to ${where}: the destination answered status ${hex(status)}`, status));
    };
    const hardStop = (f: StoreScuError) => {
      failure ??= f;
      try {
        client.abort();
      } catch {
        // no network yet, or already closed
      }
      // The library has no close(); its network object holds the socket.
      (client as unknown as { network?: { socket?: { destroy(): void } } }).network?.socket?.destroy();
      finish();
    };
    const onAbort = () => hardStop(new StoreScuError('aborted', `C-STORE to ${where}: cancelled`));
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const deadline = setTimeout(
      () => hardStop(new StoreScuError('timeout', `C-STORE to ${where}: no result within ${o.associationTimeoutMs + o.idleTimeoutMs} ms`)),
      o.associationTimeoutMs + o.idleTimeoutMs,
    );
    let request;
    try {
      request = new CStoreRequest(datasetOf(part10));
    } catch (e) {
      failure = new StoreScuError('refused', `C-STORE to ${where}: the instance could not be prepared (${(e as Error).message.slice(0, 120)})`);
      return finish();
    }
    request.on('response', (response: { getStatus(): number }) => {
      status = response.getStatus();
    });
    client.addRequest(request);
    client.on('associationRejected', (rj: { result: number; source: number; reason: number }) => {
      failure ??= new StoreScuError('rejected', `C-STORE to ${where}: association rejected (result ${rj.result}, source ${rj.source}, reason ${rj.reason})`);
    });
    client.on('networkError', (e: Error) => {
      const timeout = /timeout/i.test(e.message);
      failure ??= new StoreScuError(timeout ? 'timeout' : 'unreachable', `C-STORE to ${where}: ${timeout ? 'timed out' : 'unreachable'} (${e.message.replace(/\s+/g, ' ').slice(0, 160)})`);
    });
    client.on('closed', finish);
    try {
      client.send(d.host, d.port, o.callingAeTitle, d.aeTitle, {
        connectTimeout: o.idleTimeoutMs,
        associationTimeout: o.associationTimeoutMs,
        pduTimeout: o.idleTimeoutMs,
      });
    } catch (e) {
      failure ??= new StoreScuError('unreachable', `C-STORE to ${where}: ${(e as Error).message}`);
      finish();
    }
  });
}

export interface RetryOptions {
  retries: number;
  /** Before retry k (1-based) wait retryDelayMs * 2^(k-1). */
  retryDelayMs: number;
  /** Told about each failed attempt that will be retried. */
  onRetry?(attempt: number, error: StoreScuError, delayMs: number): void;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** storeOnce, retried on failure; rejects with the last attempt's StoreScuError (and its attempts). */
export async function storeWithRetry(part10: Uint8Array, o: StoreScuOptions & RetryOptions): Promise<{ attempts: number }> {
  for (let attempt = 1; ; attempt++) {
    try {
      await storeOnce(part10, o);
      return { attempts: attempt };
    } catch (e) {
      const err = e instanceof StoreScuError ? e : new StoreScuError('unreachable', (e as Error).message);
      if (attempt > o.retries || err.kind === 'aborted' || o.signal?.aborted) {
        err.attempts = attempt;
        throw err;
      }
      const delay = o.retryDelayMs * 2 ** (attempt - 1);
      o.onRetry?.(attempt, err, delay);
      await sleep(delay, o.signal);
    }
  }
}
