/**
 * The one in-memory mask type shared by RLE codecs, metrics, preprocessing, trainer and service.
 * Row-major (index = row * cols + col), one byte per pixel, values 0 or 1.
 * RLE formats are column-major; the codecs do the transposition, nothing else should.
 */
export interface Mask {
  readonly rows: number;
  readonly cols: number;
  readonly data: Uint8Array;
}

export function createMask(rows: number, cols: number, data?: Uint8Array): Mask {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new RangeError(`mask size must be non-negative integers, got ${rows}x${cols}`);
  }
  const buf = data ?? new Uint8Array(rows * cols);
  if (buf.length !== rows * cols) {
    throw new RangeError(`mask data has ${buf.length} values, expected ${rows}x${cols}=${rows * cols}`);
  }
  return { rows, cols, data: buf };
}

export function maskArea(mask: Mask): number {
  let n = 0;
  for (let i = 0; i < mask.data.length; i++) n += mask.data[i] !== 0 ? 1 : 0;
  return n;
}

export function masksEqual(a: Mask, b: Mask): boolean {
  if (a.rows !== b.rows || a.cols !== b.cols) return false;
  for (let i = 0; i < a.data.length; i++) if ((a.data[i] !== 0) !== (b.data[i] !== 0)) return false;
  return true;
}
