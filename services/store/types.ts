/**
 * What the service keeps per segmentation: RLE + metadata + a small 8-bit preview, never the DICOM,
 * never raw masks, never patient attributes. The same record serves GET /segmentations/{id} (any RLE
 * format, converted on read) and the PNG renderings.
 */
export interface StoredMask {
  label: string;
  /** Masks are stored in one canonical RLE form and converted on read. */
  rle: { format: 'coco-compressed'; size: [number, number]; counts: string };
  area: number;
  bbox: [number, number, number, number] | null;
  empty: boolean;
  threshold: number;
  minArea: number;
}

export interface StoredResult {
  id: string;
  createdAt: string;
  expiresAt: string;
  model: { name: string; version: string; executionProvider: string | null };
  image: {
    rows: number;
    columns: number;
    frame: number;
    numberOfFrames: number;
    transferSyntax: { uid: string; name: string };
    sopInstanceUid: string | null;
    modality: string | null;
  };
  masks: StoredMask[];
  /** Per-label Dice against the ground truth sent with the request; absent when none was sent. */
  dice?: Record<string, number>;
  timings: { decodeMs: number; preprocessMs: number; queueMs: number; inferenceMs: number; postprocessMs: number; totalMs: number };
}

/** The image windowed to 8-bit grey and shrunk so its longer side is at most PREVIEW_MAX_SIDE. */
export interface Preview {
  width: number;
  height: number;
  /** Row-major, one byte per pixel. */
  data: Uint8Array;
}

export interface ResultStore {
  readonly kind: 'memory' | 'redis';
  /** Both parts expire together after the store's TTL. */
  put(result: StoredResult, preview: Preview | undefined): Promise<void>;
  get(id: string): Promise<StoredResult | undefined>;
  getPreview(id: string): Promise<Preview | undefined>;
  /** True when the store can take writes now (always for memory; connection state for Redis). */
  healthy(): boolean;
  close(): Promise<void>;
}

export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
