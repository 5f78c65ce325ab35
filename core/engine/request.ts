/** What a caller asks the engine for, and the checks a request passes before it is admitted. */
import { MaskRulesSchema, type MaskRules } from '../segmentation/postprocessing.ts';
import { InvalidRequestError } from './errors.ts';
import { MAX_PREVIEW_SIDE } from './preview.ts';

export interface SegmentRequest {
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

/** Check every field of `req`; InvalidRequestError names the first bad field. */
export function validateRequest(req: SegmentRequest): RequestOptions {
  if (!(req.dicom instanceof Uint8Array)) throw new InvalidRequestError('dicom', 'dicom must be a Uint8Array of DICOM bytes');
  const rules: Partial<MaskRules> = {};
  for (const key of Object.keys(RULE_MESSAGES) as (keyof MaskRules)[]) {
    const value = req[key];
    if (value === undefined) continue;
    if (!MaskRulesSchema.shape[key].safeParse(value).success) throw new InvalidRequestError(key, `${key} must be ${RULE_MESSAGES[key]}, got ${String(value)}`);
    (rules as Record<string, unknown>)[key] = value;
  }
  if (req.frame !== undefined && (!Number.isInteger(req.frame) || req.frame < 0)) {
    throw new InvalidRequestError('frame', `frame must be an integer >= 0, got ${String(req.frame)}`);
  }
  if (req.tta !== undefined && typeof req.tta !== 'boolean') throw new InvalidRequestError('tta', 'tta must be a boolean');
  if (req.preview !== undefined) {
    const side = req.preview?.maxSide;
    if (!Number.isInteger(side) || side < 1 || side > MAX_PREVIEW_SIDE) {
      throw new InvalidRequestError('preview', `preview.maxSide must be an integer in 1..${MAX_PREVIEW_SIDE}, got ${String(side)}`);
    }
  }
  return { rules, tta: req.tta ?? false };
}

/** The request's bytes as a buffer the worker may own: its own when it may be taken, else a copy. */
export function ownedBytes(req: SegmentRequest): Uint8Array {
  const d = req.dicom;
  const whole = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.buffer instanceof ArrayBuffer;
  // new Uint8Array(b) copies (Buffer#slice would return a view on the caller's memory).
  return req.transferDicom && whole ? d : new Uint8Array(d);
}
