/**
 * Typed preprocessing errors. INVALID_SPEC: a PreprocessSpec (usually from model.json) that does
 * not validate; INVALID_IMAGE / INVALID_INPUT: arrays whose size disagrees with their declared shape.
 * `message` is one line.
 */
import { CodedError, registerError } from '../errors.ts';

export type PreprocessErrorCode = 'INVALID_SPEC' | 'INVALID_IMAGE' | 'INVALID_INPUT';

/** INVALID_IMAGE is the image's fault (422); a spec or array-shape failure is ours (500). */
export class PreprocessError extends CodedError<PreprocessErrorCode> {
  constructor(code: PreprocessErrorCode, message: string) {
    super(code, message.replace(/[\r\n]+/g, ' '), code === 'INVALID_IMAGE' ? 422 : 500);
    this.name = 'PreprocessError';
  }
}
registerError(PreprocessError);
