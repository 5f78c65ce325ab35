/**
 * Typed decoding errors. `code` is stable API: the service maps it to an HTTP status
 * (NOT_DICOM / UNSUPPORTED_TRANSFER_SYNTAX -> 415, TOO_LARGE -> 413, the rest -> 422)
 * and CLIs print `message` on one line.
 */
import { CodedError, registerError } from '../errors.ts';

export type DicomErrorCode =
  | 'NOT_DICOM'
  | 'TRUNCATED'
  | 'NO_PIXEL_DATA'
  | 'UNSUPPORTED_TRANSFER_SYNTAX'
  | 'UNSUPPORTED_PIXEL_FORMAT'
  | 'DIMENSION_MISMATCH'
  | 'TOO_LARGE'
  | 'FRAME_OUT_OF_RANGE'
  | 'CODEC_FAILED';

const DICOM_STATUS: Partial<Record<DicomErrorCode, number>> = { NOT_DICOM: 415, UNSUPPORTED_TRANSFER_SYNTAX: 415, TOO_LARGE: 413 };

export class DicomError extends CodedError<DicomErrorCode> {
  readonly details: Record<string, unknown>;
  constructor(code: DicomErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, DICOM_STATUS[code] ?? 422);
    this.name = 'DicomError';
    this.details = details;
  }
}
registerError(DicomError);

export function isDicomError(e: unknown): e is DicomError {
  return e instanceof DicomError;
}
