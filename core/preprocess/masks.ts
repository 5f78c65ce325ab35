import { createMask, type Mask } from '../mask.ts';
import { PreprocessError } from './errors.ts';
import type { PreprocessSpec } from './spec.ts';
import { parsePreprocessSpec } from './validate.ts';

/** Nearest-neighbour source index per output index: floor((j + 0.5) * in / out), pixel-centre aligned. */
function nearestIndex(inSize: number, outSize: number): Int32Array {
  const idx = new Int32Array(outSize);
  const scale = inSize / outSize;
  for (let j = 0; j < outSize; j++) idx[j] = Math.min(inSize - 1, Math.floor((j + 0.5) * scale));
  return idx;
}

/**
 * Nearest-neighbour resize of a mask (labels stay 0/1; any nonzero input is foreground). Uses the
 * same sampling positions as the image resize's 'nearest' method.
 */
export function resizeMask(mask: Mask, rows: number, cols: number): Mask {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new PreprocessError('INVALID_INPUT', `mask target size must be non-negative integers, got ${rows}x${cols}`);
  }
  if (mask.data.length !== mask.rows * mask.cols) {
    throw new PreprocessError('INVALID_INPUT', `mask has ${mask.data.length} values, expected ${mask.rows}x${mask.cols}`);
  }
  const out = new Uint8Array(rows * cols);
  if (mask.rows === 0 || mask.cols === 0) return createMask(rows, cols, out);
  const ri = nearestIndex(mask.rows, rows);
  const ci = nearestIndex(mask.cols, cols);
  const src = mask.data;
  for (let r = 0; r < rows; r++) {
    const s = ri[r] * mask.cols;
    const o = r * cols;
    for (let c = 0; c < cols; c++) out[o + c] = src[s + ci[c]] !== 0 ? 1 : 0;
  }
  return createMask(rows, cols, out);
}

/** A label mask at the image's rows x cols -> the model's H x W (nearest), e.g. a training target. */
export async function maskToModel(mask: Mask, spec: PreprocessSpec): Promise<Mask> {
  const s = parsePreprocessSpec(spec);
  return resizeMask(mask, s.size.height, s.size.width);
}
