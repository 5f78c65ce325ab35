/**
 * What the service keeps per segmentation (RLE + metadata + a small 8-bit preview; never the DICOM,
 * raw masks or patient attributes): the records declared once in services/contract/segmentation.ts.
 */
export type { StoredMask, StoredResult } from '../contract/segmentation.ts';
/** The image windowed to 8-bit grey and shrunk so its longer side is at most PREVIEW_MAX_SIDE. */
export type { Preview } from '../../core/segmentation/records.ts';
import type { StoredResult } from '../contract/segmentation.ts';
import type { Preview } from '../../core/segmentation/records.ts';

export interface ResultStore {
  readonly kind: 'memory' | 'redis';
  /** Both parts expire together after the store's TTL. */
  put(result: StoredResult, preview: Preview | undefined): Promise<void>;
  get(id: string): Promise<StoredResult | undefined>;
  getPreview(id: string): Promise<Preview | undefined>;
  /**
   * The result's DICOM SEG, kept only when a client asked for one (Accept: application/dicom). It holds
   * the source's patient and study attributes, so it lives exactly as long as the result.
   */
  putSeg(id: string, bytes: Uint8Array): Promise<void>;
  getSeg(id: string): Promise<Uint8Array | undefined>;
  /** True when the store can take writes now (always for memory; connection state for Redis). */
  healthy(): boolean;
  close(): Promise<void>;
}

export class StoreUnavailableError extends Error {
  /** When the store expects to be worth trying again (the circuit breaker's remaining cool-down), whole seconds >= 1. */
  readonly retryAfterSeconds: number;
  constructor(message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
    this.retryAfterSeconds = Math.max(1, Math.ceil(options?.retryAfterSeconds ?? 1));
  }
}
