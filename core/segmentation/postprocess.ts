/**
 * From network output to reported masks: the activation (activation.ts), optional horizontal-flip TTA
 * (the flipped image's output is un-flipped and averaged with the original's), bilinear resampling of
 * probabilities back to the original rows x columns and the threshold rule (threshold.ts), then the
 * min-area gate, area and bounding box. `outputToMasks` is the entry point; the processor
 * (processor.ts) is what the worker, the trainer and the CLI call.
 */
import { createMask, type Mask } from '../mask.ts';
import { PreprocessError } from '../preprocess/errors.ts';
import { bilinearAboveThresholdRuns, resampleFloat32, resampleRows } from '../preprocess/resample.ts';
import { knownRunsOf, maskFromRuns, rowRunsToRuns, type Runs } from '../rle/runs.ts';
import { sigmoid, toProbabilitiesInPlace } from './activation.ts';
import { filterComponents } from './components.ts';
import { rulesFor, type Activation, type MaskRules, type Postprocessing } from './postprocessing.ts';
import type { BBox, SegmentedMask } from './records.ts';
import { isForeground } from './threshold.ts';

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
  bbox: BBox;
}

export function maskStats(mask: Mask): MaskStats {
  const runs = knownRunsOf(mask);
  if (runs) return runsStats(runs, mask.rows);
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

/** maskStats of a mask given as column-major runs (each may continue into the next columns). */
function runsStats(runs: Runs, rows: number): MaskStats {
  let area = 0;
  let minX = Infinity;
  let maxX = -1;
  let minY = Infinity;
  let maxY = -1;
  for (let k = 0; k < runs.count; k++) {
    const s = runs.starts[k]!;
    const e = s + runs.lengths[k]! - 1;
    area += runs.lengths[k]!;
    const x0 = Math.floor(s / rows);
    const x1 = Math.floor(e / rows);
    if (x0 < minX) minX = x0;
    if (x1 > maxX) maxX = x1;
    // Within one column the run spans its rows; spilling into the next column it reaches both ends.
    const y0 = x0 === x1 ? s - x0 * rows : 0;
    const y1 = x0 === x1 ? e - x1 * rows : rows - 1;
    if (y0 < minY) minY = y0;
    if (y1 > maxY) maxY = y1;
  }
  return { area, bbox: area === 0 ? null : [minX, minY, maxX - minX + 1, maxY - minY + 1] };
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
    // As its runs: no rows x cols image is made here; RLE, area and bbox read the runs, and the
    // pixels are painted only for a consumer that reads them (Dice, a SEG, component rules).
    const runs = bilinearAboveThresholdRuns(probs, modelH, modelW, rows, cols, threshold);
    return maskFromRuns(rowRunsToRuns(runs, rows, cols), rows, cols);
  }
  // Thresholded row by row as the resampler produces them: no full-size float image.
  const out = new Uint8Array(rows * cols);
  resampleRows(probs, modelH, modelW, rows, cols, 'bilinear', (y, p) => {
    const o = y * cols;
    for (let x = 0; x < cols; x++) out[o + x] = isForeground(p[x]!, threshold) ? 1 : 0;
  });
  return createMask(rows, cols, out);
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
  topThreshold?: number;
  minComponentArea?: number;
  keepLargest?: boolean;
  /** Per-label overrides of the rules above. */
  classes?: Postprocessing['classes'];
  /** Softmax models: the channel that is background (no mask is reported for it). */
  background?: number;
}

/** Probabilities (C x H x W, already activated and TTA-averaged) -> one mask per label. */
export async function probabilitiesToMasks(probs: Float32Array, o: PostprocessOptions): Promise<SegmentedMask[]> {
  const plane = checkPlanes(probs, o);
  const out: SegmentedMask[] = [];
  for (let c = 0; c < o.channels; c++) {
    const p = probs.subarray(c * plane, (c + 1) * plane);
    const label = o.labels[c]!;
    const r = rulesFor(o, label);
    const mask = await probabilitiesToMask(p, o.height, o.width, o.rows, o.cols, r.threshold);
    const top = r.topThreshold === undefined ? undefined : await probabilitiesToMask(p, o.height, o.width, o.rows, o.cols, r.topThreshold);
    out.push(refine(mask, top, label, r));
  }
  return out;
}

export interface OutputOptions extends PostprocessOptions {
  /** What the network emits (the manifest's output.activation). */
  activation: Activation;
}

/**
 * One image's network output (C x H x W), plus its flipped twin's for TTA, -> one mask per label:
 * sigmoid when the network emits logits, TTA averaging, then probabilitiesToMasks. Without TTA at
 * the model's own size the sigmoid is skipped where it cannot change the answer (see
 * logitsAboveThreshold); the masks are the same either way. `output` and `flipped` are overwritten.
 */
export async function outputToMasks(output: Float32Array, flipped: Float32Array | undefined, o: OutputOptions): Promise<SegmentedMask[]> {
  if (o.activation === 'softmax') {
    const plane = checkPlanes(output, o);
    toProbabilitiesInPlace(output, 'softmax', o.channels, plane);
    if (flipped) {
      toProbabilitiesInPlace(flipped, 'softmax', o.channels, plane);
      averageWithUnflipped(output, flipped, o.channels, o.height, o.width);
    }
    return argmaxMasks(output, o);
  }
  const logits = o.activation === 'logits';
  if (logits && !flipped && o.rows === o.height && o.cols === o.width) {
    const plane = checkPlanes(output, o);
    const out: SegmentedMask[] = [];
    for (let c = 0; c < o.channels; c++) {
      const x = output.subarray(c * plane, (c + 1) * plane);
      const label = o.labels[c]!;
      const r = rulesFor(o, label);
      const mask = createMask(o.rows, o.cols, logitsAboveThreshold(x, r.threshold));
      const top = r.topThreshold === undefined ? undefined : createMask(o.rows, o.cols, logitsAboveThreshold(x, r.topThreshold));
      out.push(refine(mask, top, label, r));
    }
    return out;
  }
  toProbabilitiesInPlace(output, o.activation);
  if (flipped) {
    toProbabilitiesInPlace(flipped, o.activation);
    averageWithUnflipped(output, flipped, o.channels, o.height, o.width);
  }
  return probabilitiesToMasks(output, o);
}

/**
 * 1 where sigmoid(x) > threshold, with sigmoid computed exactly as toProbabilitiesInPlace does (float32)
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
      p[0] = sigmoid(logits[i]!);
      out[i] = isForeground(p[0]!, threshold) ? 1 : 0;
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
    // In the band (or NaN): the float32 sigmoid, compared by the threshold rule.
    p[0] = sigmoid(x);
    out[i] = isForeground(p[0]!, threshold) ? 1 : 0;
  }
  return out;
}

function checkPlanes(values: Float32Array, o: PostprocessOptions): number {
  const plane = o.height * o.width;
  if (values.length !== o.channels * plane) throw new RangeError(`postprocess: ${values.length} values for ${o.channels}x${o.height}x${o.width}`);
  if (o.labels.length !== o.channels) throw new RangeError(`postprocess: ${o.labels.length} labels for ${o.channels} channels`);
  return plane;
}

/**
 * Mutually exclusive classes (softmax probabilities, C x H x W): each class's probabilities are
 * resampled bilinearly to the original grid, each pixel goes to its most probable class (the lower
 * channel on a tie), and every class but the background gets a mask with its rules (the threshold does
 * not apply: the argmax decides; the triplet's top threshold still gates on the class's probability).
 */
export function argmaxMasks(probs: Float32Array, o: PostprocessOptions): SegmentedMask[] {
  const plane = checkPlanes(probs, o);
  if (o.background === undefined || !(o.background >= 0 && o.background < o.channels)) {
    throw new RangeError(`postprocess: softmax needs the background channel, got ${o.background}`);
  }
  const same = o.rows === o.height && o.cols === o.width;
  const maps = Array.from({ length: o.channels }, (_, c) => {
    const p = probs.subarray(c * plane, (c + 1) * plane);
    return same ? p : resampleFloat32(p, o.height, o.width, o.rows, o.cols, 'bilinear');
  });
  const n = o.rows * o.cols;
  const best = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    let bc = 0;
    let bp = maps[0]![i]!;
    for (let c = 1; c < o.channels; c++) {
      const v = maps[c]![i]!;
      if (v > bp) {
        bp = v;
        bc = c;
      }
    }
    best[i] = bc;
  }
  const out: SegmentedMask[] = [];
  for (let c = 0; c < o.channels; c++) {
    if (c === o.background) continue;
    const label = o.labels[c]!;
    const r = rulesFor(o, label);
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = best[i] === c ? 1 : 0;
    let top: Mask | undefined;
    if (r.topThreshold !== undefined) {
      const t = r.topThreshold;
      const p = maps[c]!;
      top = createMask(o.rows, o.cols, Uint8Array.from(p, (v) => (isForeground(v, t) ? 1 : 0)));
    }
    out.push(refine(createMask(o.rows, o.cols, data), top, label, r, null));
  }
  return out;
}

/**
 * The mask's rules after the threshold: small components removed, the largest kept, then the gate:
 * with a top threshold (the SIIM triplet) the mask survives only when at least minArea pixels lie
 * above it; without one, a mask smaller than minArea is noise. Then area and bbox.
 */
function refine(given: Mask, top: Mask | undefined, label: string, r: MaskRules, threshold: number | null = r.threshold): SegmentedMask {
  const mask = filterComponents(given, r);
  let { area, bbox } = maskStats(mask);
  const evidence = top ? maskStats(top).area : area;
  let m = mask;
  if (area > 0 && evidence < r.minArea) {
    m = createMask(mask.rows, mask.cols);
    area = 0;
    bbox = null;
  }
  const facts: SegmentedMask = { label, mask: m, area, bbox, empty: area === 0, threshold, minArea: r.minArea };
  // Rules beyond threshold/minArea are reported only when in force, so binary results stay as they were.
  if (r.topThreshold !== undefined) facts.topThreshold = r.topThreshold;
  if (r.minComponentArea) facts.minComponentArea = r.minComponentArea;
  if (r.keepLargest) facts.keepLargest = true;
  return facts;
}
