/**
 * Typed error for malformed run-length encodings. `code` is stable API: the service answers 400
 * with `message` (always one line). `details` carries machine-readable context (format, index).
 */
import { CodedError, registerError } from '../errors.ts';

export class RleError extends CodedError<'INVALID_RLE'> {
  readonly details: Record<string, unknown>;
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('INVALID_RLE', message.replace(/[\r\n]+/g, ' '), 400);
    this.name = 'RleError';
    this.details = details;
  }
}
registerError(RleError);

export function isRleError(e: unknown): e is RleError {
  return e instanceof RleError;
}
