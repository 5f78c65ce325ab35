/**
 * Typed error for malformed run-length encodings. `code` is stable API: the service answers 400
 * with `message` (always one line). `details` carries machine-readable context (format, index).
 */
export class RleError extends Error {
  readonly code = 'INVALID_RLE' as const;
  readonly details: Record<string, unknown>;
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(message.replace(/[\r\n]+/g, ' '));
    this.name = 'RleError';
    this.details = details;
  }
}

export function isRleError(e: unknown): e is RleError {
  return e instanceof RleError;
}
