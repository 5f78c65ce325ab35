/**
 * From network output to reported masks: sigmoid when the model emits logits, optional horizontal-flip
 * TTA (the flipped image's output is un-flipped and averaged with the original's), bilinear resampling
 * of probabilities back to the original rows x columns and thresholding (core/preprocess's
 * probabilitiesToMask), then the min-area gate, area and bounding box. Runs in the inference worker.
 */
import { createMask, type Mask } from '../mask.ts';
import { probabilitiesToMask } from '../preprocess/index.ts';

/** In place: logits -> probabilities. */
export function sigmoidInPlace(x: Float32Array): Float32Array {
  for (let i = 0; i < x.length; i++) x[i] = 1 / (1 + Math.exp(-x[i]!));
  return x;
}

/** Mirror each row of a C x H x W tensor (horizontal flip); returns a new array. */
export function hflipCHW(src: Float32Array, channels: number, height: number, width: number): Float32Array {
  if (src.length !== channels * height * width) throw new RangeError(`hflip: ${src.length} values for ${channels}x${height}x${width}`);
  const out = new Float32Array(src.length);
  for (let row = 0; row < channels * height; row++) {
    const o = row * width;
    for (let x = 0; x < width; x++) out[o + x] = src[o + width - 1 - x]!;
  }
  return out;
}

/** In place into `probs`: the mean of `probs` and the un-flipped `flippedProbs` (both C x H x W). */
export function averageWithUnflipped(probs: Float32Array, flippedProbs: Float32Array, channels: number, height: number, width: number): Float32Array {
  if (probs.length !== flippedProbs.length || probs.length !== channels * height * width) {
    throw new RangeError(`TTA: ${probs.length} and ${flippedProbs.length} values for ${channels}x${height}x${width}`);
  }
  for (let row = 0; row < channels * height; row++) {
    const o = row * width;
    for (let x = 0; x < width; x++) probs[o + x] = 0.5 * (probs[o + x]! + flippedProbs[o + width - 1 - x]!);
  }
  return probs;
}

export interface MaskStats {
  area: number;
  /** [x, y, width, height] of the foreground in pixels, or null when empty. */
  bbox: [number, number, number, number] | null;
}

export function maskStats(mask: Mask): MaskStats {
  const { rows, cols, data } = mask;
  let area = 0;
  let minX = cols;
  let minY = rows;
  let maxX = -1;
  let maxY = -1;
  // Masks are mostly background: where the bytes are 4-aligned, all-zero words are skipped whole.
  const words = (data.byteOffset & 3) === 0 ? new Uint32Array(data.buffer, data.byteOffset, data.length >> 2) : null;
  for (let y = 0; y < rows; y++) {
    const o = y * cols;
    let first = -1;
    let last = -1;
    let x = 0;
    while (x < cols) {
      const i = o + x;
      if (words !== null && (i & 3) === 0 && x + 4 <= cols && words[i >> 2] === 0) {
        x += 4;
        continue;
      }
      if (data[i] !== 0) {
        area++;
        if (first < 0) first = x;
        last = x;
      }
      x++;
    }
    if (first >= 0) {
      if (first < minX) minX = first;
      if (last > maxX) maxX = last;
      if (y < minY) minY = y;
      maxY = y;
    }
  }
  return { area, bbox: area === 0 ? null : [minX, minY, maxX - minX + 1, maxY - minY + 1] };
}

export interface PostprocessOptions {
  /** Model output geometry. */
  channels: number;
  height: number;
  width: number;
  /** Original image size. */
  rows: number;
  cols: number;
  labels: readonly string[];
  threshold: number;
  /** Masks with fewer positive pixels (original resolution) are reported empty. */
  minArea: number;
}

export interface PostprocessedMask {
  label: string;
  mask: Mask;
  area: number;
  bbox: [number, number, number, number] | null;
  empty: boolean;
  threshold: number;
  minArea: number;
}

/** Probabilities (C x H x W, already sigmoid'ed and TTA-averaged) -> one mask per label. */
export async function probabilitiesToMasks(probs: Float32Array, o: PostprocessOptions): Promise<PostprocessedMask[]> {
  const plane = o.height * o.width;
  if (probs.length !== o.channels * plane) throw new RangeError(`postprocess: ${probs.length} values for ${o.channels}x${o.height}x${o.width}`);
  if (o.labels.length !== o.channels) throw new RangeError(`postprocess: ${o.labels.length} labels for ${o.channels} channels`);
  const out: PostprocessedMask[] = [];
  for (let c = 0; c < o.channels; c++) {
    let mask = await probabilitiesToMask(probs.subarray(c * plane, (c + 1) * plane), o.height, o.width, o.rows, o.cols, o.threshold);
    let { area, bbox } = maskStats(mask);
    // SIIM-winner style gate: a small positive region is more likely noise than a finding.
    if (area > 0 && area < o.minArea) {
      mask = createMask(o.rows, o.cols);
      area = 0;
      bbox = null;
    }
    out.push({ label: o.labels[c]!, mask, area, bbox, empty: area === 0, threshold: o.threshold, minArea: o.minArea });
  }
  return out;
}
