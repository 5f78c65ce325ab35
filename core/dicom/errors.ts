/**
 * Typed decoding errors. `code` is stable API: the service maps it to an HTTP status
 * (NOT_DICOM / UNSUPPORTED_TRANSFER_SYNTAX -> 415, TOO_LARGE -> 413, the rest -> 422)
 * and CLIs print `message` on one line.
 */
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

export class DicomError extends Error {
  readonly code: DicomErrorCode;
  readonly details: Record<string, unknown>;
  constructor(code: DicomErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'DicomError';
    this.code = code;
    this.details = details;
  }
}

export function isDicomError(e: unknown): e is DicomError {
  return e instanceof DicomError;
}
