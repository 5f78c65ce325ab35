/** What a caller asks the engine for, and the checks a request passes before it is admitted. */
import { MaskRulesSchema, type MaskRules } from '../segmentation/postprocessing.ts';
import type { ModelRef, SegmentedMask, SegmentResult, Timings } from '../segmentation/records.ts';
import { InvalidRequestError } from './errors.ts';
import { MAX_PREVIEW_SIDE } from './preview.ts';

export interface SegmentRequest {
  /**
   * The DICOM file. A view of a SharedArrayBuffer is shared with the worker as it is, neither copied
   * nor transferred (the caller must not write to it until the request ends): the frames of one
   * multi-frame instance then cost one copy of the file, not one per frame.
   */
  dicom: Uint8Array;
  model?: string;
  version?: string;
  /** Post-processing rules for every label, over the manifest's (core/segmentation/postprocessing.ts). */
  threshold?: number;
  minArea?: number;
  topThreshold?: number;
  minComponentArea?: number;
  keepLargest?: boolean;
  tta?: boolean;
  frame?: number;
  /**
   * Let the engine take the bytes' ArrayBuffer instead of copying it (the caller's array is detached
   * afterwards). Only honoured when the array spans its whole buffer; default false (copy).
   */
  transferDicom?: boolean;
  /**
   * Also return an 8-bit preview of the decoded frame (windowed and box-filtered exactly as
   * core/engine/preview.ts says), made in the worker from the image it decoded anyway.
   */
  preview?: { maxSide: number };
  /**
   * Also return the model's probabilities for the image (SegmentResult & { probabilities }): the output
   * after the manifest's activation (with TTA, averaged with the un-flipped twin), C x H x W at the
   * model's output size, not resampled to the image (the masks are).
   */
  probabilities?: boolean;
  /**
   * false: no masks (SegmentResult.masks is empty; post-processing is skipped), for a caller that wants
   * only the probabilities. Default true; false needs `probabilities: true`.
   */
  masks?: boolean;
  /**
   * Cancel the request (e.g. the HTTP client went away): not yet running, it leaves the queue; running,
   * its result is discarded. The request then fails with RequestCancelledError (CANCELLED).
   */
  signal?: AbortSignal;
}

/** A request's own post-processing rules (only those it set: the processor merges them over the manifest's). */
export interface RequestOptions {
  rules: Partial<MaskRules>;
  tta: boolean;
}

const RULE_MESSAGES: Record<keyof MaskRules, string> = {
  threshold: 'a number in (0, 1)',
  minArea: 'an integer >= 0',
  topThreshold: 'a number in (0, 1)',
  minComponentArea: 'an integer >= 0',
  keepLargest: 'a boolean',
};

/** The rules a request sets, checked; InvalidRequestError names the first bad one. */
function checkRules(req: Partial<MaskRules>): Partial<MaskRules> {
  const rules: Partial<MaskRules> = {};
  for (const key of Object.keys(RULE_MESSAGES) as (keyof MaskRules)[]) {
    const value = req[key];
    if (value === undefined) continue;
    if (!MaskRulesSchema.shape[key].safeParse(value).success) throw new InvalidRequestError(key, `${key} must be ${RULE_MESSAGES[key]}, got ${String(value)}`);
    (rules as Record<string, unknown>)[key] = value;
  }
  return rules;
}

/** Check every field of `req`; InvalidRequestError names the first bad field. */
export function validateRequest(req: SegmentRequest): RequestOptions {
  if (!(req.dicom instanceof Uint8Array)) throw new InvalidRequestError('dicom', 'dicom must be a Uint8Array of DICOM bytes');
  const rules = checkRules(req);
  if (req.frame !== undefined && (!Number.isInteger(req.frame) || req.frame < 0)) {
    throw new InvalidRequestError('frame', `frame must be an integer >= 0, got ${String(req.frame)}`);
  }
  if (req.tta !== undefined && typeof req.tta !== 'boolean') throw new InvalidRequestError('tta', 'tta must be a boolean');
  if (req.probabilities !== undefined && typeof req.probabilities !== 'boolean') throw new InvalidRequestError('probabilities', 'probabilities must be a boolean');
  if (req.masks !== undefined && typeof req.masks !== 'boolean') throw new InvalidRequestError('masks', 'masks must be a boolean');
  if (req.masks === false && req.probabilities !== true) throw new InvalidRequestError('masks', 'masks: false needs probabilities: true (ask for masks, probabilities or both)');
  if (req.preview !== undefined) {
    const side = req.preview?.maxSide;
    if (!Number.isInteger(side) || side < 1 || side > MAX_PREVIEW_SIDE) {
      throw new InvalidRequestError('preview', `preview.maxSide must be an integer in 1..${MAX_PREVIEW_SIDE}, got ${String(side)}`);
    }
  }
  return { rules, tta: req.tta ?? false };
}

/** The request's bytes as the worker gets them: shared as they are, taken when allowed, else a copy. */
export function ownedBytes(req: SegmentRequest): Uint8Array {
  const d = req.dicom;
  if (typeof SharedArrayBuffer !== 'undefined' && d.buffer instanceof SharedArrayBuffer) return d;
  const whole = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.buffer instanceof ArrayBuffer;
  // new Uint8Array(b) copies (Buffer#slice would return a view on the caller's memory).
  return req.transferDicom && whole ? d : new Uint8Array(d);
}

/**
 * A raw-tensor request (Engine.infer): N preprocessed images, the model input as the manifest declares
 * it (N x C x H x W, row-major), run through the same admission, batcher, deadlines and cancellation as
 * a SegmentRequest, without the decode/preprocess task.
 */
export interface TensorRequest {
  model?: string;
  version?: string;
  /** N images of C*H*W values each, back to back. */
  tensor: Float32Array;
  /** What to return; at least one. Masks are at the model's output size (its H x W). */
  outputs: { masks?: boolean; probabilities?: boolean };
  /** Post-processing rules for every label, over the manifest's (as SegmentRequest's). */
  rules?: Partial<MaskRules>;
  /**
   * Let the engine take the tensor's ArrayBuffer instead of copying it (the caller's array is detached
   * afterwards). Only honoured for one image whose array spans its whole buffer; default false (copy).
   */
  transferTensor?: boolean;
  /** As SegmentRequest's: cancels the request (RequestCancelledError). */
  signal?: AbortSignal;
}

/** One image of a TensorResult. */
export interface TensorImageResult {
  /** One per mask label, H x W at the model's output size (when asked for). */
  masks?: SegmentedMask[];
  /** C x H x W after the activation, at the model's output size (when asked for). */
  probabilities?: Float32Array;
}

export interface TensorResult {
  model: ModelRef;
  /** Per image, in the tensor's order. */
  images: TensorImageResult[];
  /** The model's output C, H, W (what probabilities and masks are sized by). */
  outputShape: [number, number, number];
  /** decodeMs and preprocessMs are 0 (none ran); inferenceMs is the longest of the images' batches, postprocessMs their sum. */
  timings: Timings;
}

/** What segment() resolves to: the records, plus the probabilities when the request asked for them. */
export type SegmentResponse = SegmentResult & { probabilities?: Float32Array };

export interface TensorRequestOptions {
  rules: Partial<MaskRules>;
  outputs: { masks: boolean; probabilities: boolean };
  /** N */
  images: number;
}

/**
 * Check a tensor request against the model input (C x H x W of one image) and the queue bound: N
 * images must fit in `maxQueue` (EngineConfig.maxQueue, what admission bounds), so one request can
 * never hold more than the whole queue. InvalidRequestError names the field.
 */
export function validateTensorRequest(req: TensorRequest, input: readonly [number, number, number], maxQueue: number): TensorRequestOptions {
  if (!(req.tensor instanceof Float32Array)) throw new InvalidRequestError('tensor', 'tensor must be a Float32Array (N x C x H x W)');
  const plane = input[0] * input[1] * input[2];
  const n = req.tensor.length / plane;
  if (req.tensor.length === 0 || !Number.isInteger(n)) {
    throw new InvalidRequestError('tensor', `tensor has ${req.tensor.length} values, not a whole number (>= 1) of ${input.join('x')} images`);
  }
  if (n > maxQueue) throw new InvalidRequestError('tensor', `tensor holds ${n} images, more than the engine admits at once (maxQueue ${maxQueue})`);
  const masks = req.outputs?.masks ?? false;
  const probabilities = req.outputs?.probabilities ?? false;
  if (typeof masks !== 'boolean' || typeof probabilities !== 'boolean') throw new InvalidRequestError('outputs', 'outputs.masks and outputs.probabilities must be booleans');
  if (!masks && !probabilities) throw new InvalidRequestError('outputs', 'ask for masks, probabilities or both');
  return { rules: checkRules(req.rules ?? {}), outputs: { masks, probabilities }, images: n };
}

/** Image `i` of the request's tensor as an array the worker may own (the caller's own when it may be taken). */
export function ownedImage(req: TensorRequest, i: number, plane: number, images: number): Float32Array {
  const t = req.tensor;
  const whole = images === 1 && t.byteOffset === 0 && t.byteLength === t.buffer.byteLength && t.buffer instanceof ArrayBuffer;
  return req.transferTensor && whole ? t : t.slice(i * plane, (i + 1) * plane);
}
