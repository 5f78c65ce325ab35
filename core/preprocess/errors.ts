/**
 * Typed preprocessing errors. INVALID_SPEC: a PreprocessSpec (usually from model.json) that does
 * not validate; INVALID_IMAGE / INVALID_INPUT: arrays whose size disagrees with their declared shape.
 * `message` is one line.
 */
export type PreprocessErrorCode = 'INVALID_SPEC' | 'INVALID_IMAGE' | 'INVALID_INPUT';

export class PreprocessError extends Error {
  readonly code: PreprocessErrorCode;
  constructor(code: PreprocessErrorCode, message: string) {
    super(message.replace(/[\r\n]+/g, ' '));
    this.name = 'PreprocessError';
    this.code = code;
  }
}
