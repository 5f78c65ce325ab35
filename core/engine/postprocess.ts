/**
 * From network output to reported masks: sigmoid when the model emits logits, optional horizontal-flip
 * TTA (the flipped image's output is un-flipped and averaged with the original's), bilinear resampling
 * of probabilities back to the original rows x columns and thresholding (core/preprocess's
 * probabilitiesToMask), then the min-area gate, area and bounding box. Runs in the inference worker
 * (`outputToMasks` is the entry point).
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
  // Where the bytes are 4-aligned they are read a word at a time: all-zero words (background) are
  // skipped, and the others count their nonzero bytes without a branch per byte.
  const words = (data.byteOffset & 3) === 0 ? new Uint32Array(data.buffer, data.byteOffset, data.length >> 2) : null;
  for (let y = 0; y < rows; y++) {
    const o = y * cols;
    const end = o + cols;
    // First and last foreground column of the row, if any.
    let i = o;
    while (i < end) {
      if (words !== null && (i & 3) === 0 && i + 4 <= end && words[i >> 2] === 0) i += 4;
      else if (data[i] === 0) i++;
      else break;
    }
    if (i === end) continue;
    let j = end - 1;
    while (data[j] === 0) j--;
    // Nonzero bytes in [i, j].
    let k = i;
    while (k <= j && (words === null || (k & 3) !== 0)) area += data[k++] !== 0 ? 1 : 0;
    if (words !== null) {
      for (; k + 4 <= j + 1; k += 4) {
        let w = words[k >> 2]!;
        // Fold each byte onto its lowest bit (1 iff the byte is nonzero), then add the four bits.
        w |= w >>> 4;
        w |= w >>> 2;
        w |= w >>> 1;
        area += (Math.imul(w & 0x01010101, 0x01010101) >>> 24) & 0xff;
      }
    }
    for (; k <= j; k++) area += data[k] !== 0 ? 1 : 0;
    const first = i - o;
    const last = j - o;
    if (first < minX) minX = first;
    if (last > maxX) maxX = last;
    if (y < minY) minY = y;
    maxY = y;
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
  const plane = checkPlanes(probs, o);
  const out: PostprocessedMask[] = [];
  for (let c = 0; c < o.channels; c++) {
    const mask = await probabilitiesToMask(probs.subarray(c * plane, (c + 1) * plane), o.height, o.width, o.rows, o.cols, o.threshold);
    out.push(gated(mask, o.labels[c]!, o));
  }
  return out;
}

export interface OutputOptions extends PostprocessOptions {
  /** What the network emits (the manifest's output.activation). */
  activation: 'logits' | 'sigmoid';
}

/**
 * One image's network output (C x H x W), plus its flipped twin's for TTA, -> one mask per label:
 * sigmoid when the network emits logits, TTA averaging, then probabilitiesToMasks. Without TTA at
 * the model's own size the sigmoid is skipped where it cannot change the answer (see
 * logitsAboveThreshold); the masks are the same either way. `output` and `flipped` are overwritten.
 */
export async function outputToMasks(output: Float32Array, flipped: Float32Array | undefined, o: OutputOptions): Promise<PostprocessedMask[]> {
  const logits = o.activation === 'logits';
  if (logits && !flipped && o.rows === o.height && o.cols === o.width) {
    const plane = checkPlanes(output, o);
    const out: PostprocessedMask[] = [];
    for (let c = 0; c < o.channels; c++) {
      const data = logitsAboveThreshold(output.subarray(c * plane, (c + 1) * plane), o.threshold);
      out.push(gated(createMask(o.rows, o.cols, data), o.labels[c]!, o));
    }
    return out;
  }
  if (logits) sigmoidInPlace(output);
  if (flipped) {
    if (logits) sigmoidInPlace(flipped);
    averageWithUnflipped(output, flipped, o.channels, o.height, o.width);
  }
  return probabilitiesToMasks(output, o);
}

/**
 * 1 where sigmoid(x) > threshold, with sigmoid computed exactly as sigmoidInPlace does (float32)
 * only near the decision. Away from x0 = logit(threshold) by delta, |sigmoid(x) - threshold| >=
 * 0.36 * delta * t(1-t) (sigmoid' changes by at most e^delta over the band), which delta keeps
 * above 1e-6, while the float32 sigmoid is within 1.5e-7 of the true value: the decision there
 * cannot differ from comparing the computed probability. Thresholds too close to 0 or 1 for such
 * a band take the exact path everywhere.
 */
export function logitsAboveThreshold(logits: Float32Array, threshold: number): Uint8Array {
  const out = new Uint8Array(logits.length);
  const spread = threshold * (1 - threshold);
  const delta = 3e-6 / spread;
  if (!(threshold > 0 && threshold < 1) || !(delta <= 0.5)) {
    const p = new Float32Array(1);
    for (let i = 0; i < logits.length; i++) {
      p[0] = 1 / (1 + Math.exp(-logits[i]!));
      out[i] = p[0]! > threshold ? 1 : 0;
    }
    return out;
  }
  const x0 = Math.log(threshold / (1 - threshold));
  const lo = x0 - delta;
  const hi = x0 + delta;
  const p = new Float32Array(1);
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i]!;
    if (x < lo) continue;
    if (x > hi) {
      out[i] = 1;
      continue;
    }
    // In the band (or NaN): the float32 sigmoid, compared as probabilitiesToMask compares it.
    p[0] = 1 / (1 + Math.exp(-x));
    out[i] = p[0]! > threshold ? 1 : 0;
  }
  return out;
}

function checkPlanes(values: Float32Array, o: PostprocessOptions): number {
  const plane = o.height * o.width;
  if (values.length !== o.channels * plane) throw new RangeError(`postprocess: ${values.length} values for ${o.channels}x${o.height}x${o.width}`);
  if (o.labels.length !== o.channels) throw new RangeError(`postprocess: ${o.labels.length} labels for ${o.channels} channels`);
  return plane;
}

/** Area and bbox, and the SIIM-winner style gate: a small positive region is more likely noise than a finding. */
function gated(mask: Mask, label: string, o: PostprocessOptions): PostprocessedMask {
  let { area, bbox } = maskStats(mask);
  let m = mask;
  if (area > 0 && area < o.minArea) {
    m = createMask(o.rows, o.cols);
    area = 0;
    bbox = null;
  }
  return { label, mask: m, area, bbox, empty: area === 0, threshold: o.threshold, minArea: o.minArea };
}
