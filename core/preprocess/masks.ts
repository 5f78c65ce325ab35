import { createMask, type Mask } from '../mask.ts';
import { PreprocessError } from './errors.ts';
import { bilinearAboveThreshold, resampleRows } from './resample.ts';
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

/**
 * The inverse of preprocessing's resize for a network output: bilinear resampling of the
 * probabilities (H*W at model resolution) to the original rows x cols, then `p > threshold`.
 * Resampling probabilities before thresholding gives smoother, better-placed edges than
 * resizing a binary mask.
 */
export async function probabilitiesToMask(
  probs: Float32Array,
  modelH: number,
  modelW: number,
  rows: number,
  cols: number,
  threshold: number,
): Promise<Mask> {
  for (const [name, v] of [['modelH', modelH], ['modelW', modelW], ['rows', rows], ['cols', cols]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new PreprocessError('INVALID_INPUT', `${name} must be a positive integer, got ${v}`);
  }
  if (probs.length !== modelH * modelW) {
    throw new PreprocessError('INVALID_INPUT', `probabilities have ${probs.length} values, expected ${modelH}x${modelW}=${modelH * modelW}`);
  }
  if (!Number.isFinite(threshold)) throw new PreprocessError('INVALID_INPUT', `threshold must be a finite number, got ${threshold}`);
  // A positive threshold (every real one) lets the resampler skip outputs whose answer is certain.
  if (threshold > 0 && (rows !== modelH || cols !== modelW)) {
    return createMask(rows, cols, bilinearAboveThreshold(probs, modelH, modelW, rows, cols, threshold));
  }
  // Thresholded row by row as the resampler produces them: no full-size float image.
  const out = new Uint8Array(rows * cols);
  resampleRows(probs, modelH, modelW, rows, cols, 'bilinear', (y, p) => {
    const o = y * cols;
    for (let x = 0; x < cols; x++) out[o + x] = p[x] > threshold ? 1 : 0;
  });
  return createMask(rows, cols, out);
}
