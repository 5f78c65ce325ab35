import { createMask, type Mask } from '../mask.ts';
import { decodeCocoCounts, decodeCocoString, encodeCocoCounts, encodeCocoString } from './coco.ts';
import { RleError } from './errors.ts';
import { decodeKaggle, encodeKaggle } from './kaggle.ts';
import { decodeSiim, encodeSiim } from './siim.ts';

export { RleError, isRleError } from './errors.ts';
export { encodeKaggle, decodeKaggle } from './kaggle.ts';
export { encodeSiim, decodeSiim } from './siim.ts';
export { encodeCocoCounts, decodeCocoCounts, encodeCocoString, decodeCocoString, cocoCountsToString, cocoStringToCounts } from './coco.ts';

export type RleFormat = 'kaggle' | 'siim' | 'coco' | 'coco-compressed';
export const RLE_FORMATS: readonly RleFormat[] = ['kaggle', 'siim', 'coco', 'coco-compressed'];

export function isRleFormat(s: unknown): s is RleFormat {
  return typeof s === 'string' && (RLE_FORMATS as readonly string[]).includes(s);
}

/** Encode a mask (any nonzero byte is foreground). Only 'coco' yields a number array. */
export function encodeMask(mask: Mask, format: 'coco'): number[];
export function encodeMask(mask: Mask, format: 'kaggle' | 'siim' | 'coco-compressed'): string;
export function encodeMask(mask: Mask, format: RleFormat): string | number[];
export function encodeMask(mask: Mask, format: RleFormat): string | number[] {
  switch (format) {
    case 'kaggle':
      return encodeKaggle(mask);
    case 'siim':
      return encodeSiim(mask);
    case 'coco':
      return encodeCocoCounts(mask);
    case 'coco-compressed':
      return encodeCocoString(mask);
    default:
      throw new RleError(`unknown RLE format ${JSON.stringify(format)}; expected one of ${RLE_FORMATS.join(', ')}`);
  }
}

/**
 * Decode and strictly validate an encoding into a rows x cols row-major 0/1 mask.
 * Throws RleError (code INVALID_RLE) for anything malformed, including a counts type that does
 * not match the format ('coco' takes a number array, the others a string).
 */
export function decodeMask(counts: string | number[], format: RleFormat, rows: number, cols: number): Mask {
  if (!isRleFormat(format)) {
    throw new RleError(`unknown RLE format ${JSON.stringify(format)}; expected one of ${RLE_FORMATS.join(', ')}`);
  }
  if (format === 'coco') {
    if (!Array.isArray(counts)) throw new RleError("coco RLE: counts must be an array of integers (use 'coco-compressed' for the string form)", { format });
    return decodeCocoCounts(counts, rows, cols);
  }
  if (typeof counts !== 'string') throw new RleError(`${format} RLE: counts must be a string`, { format });
  switch (format) {
    case 'kaggle':
      return decodeKaggle(counts, rows, cols);
    case 'siim':
      return decodeSiim(counts, rows, cols);
    case 'coco-compressed':
      return decodeCocoString(counts, rows, cols);
  }
}

/** Union of several masks of one size (several RLE rows for one image mean their union). */
export function unionMasks(rows: number, cols: number, masks: Iterable<Mask>): Mask {
  const out = new Uint8Array(rows * cols);
  for (const m of masks) {
    if (m.rows !== rows || m.cols !== cols) throw new RangeError(`union of masks of different sizes: ${m.rows}x${m.cols} vs ${rows}x${cols}`);
    const d = m.data;
    for (let i = 0; i < d.length; i++) out[i] |= d[i] !== 0 ? 1 : 0;
  }
  return createMask(rows, cols, out);
}
