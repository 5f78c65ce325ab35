import type { LutSamples } from '../dicom/types.ts';
import type { ResizeMethod } from './spec.ts';
import { isForeground } from '../segmentation/threshold.ts';
import { RowRuns } from '../rle/runs.ts';

/**
 * Separable resampling of single-channel float32 images with pixel-centre alignment
 * (output pixel j samples input coordinate (j + 0.5) * in/out - 0.5, as PIL, OpenCV and
 * PyTorch's align_corners=false do). When shrinking, the kernel is widened by the scale factor
 * (antialiasing, like PIL and torchvision's antialias=true); when enlarging it is the plain
 * interpolation kernel. Taps falling outside the image are dropped and the remaining weights
 * renormalised, which equals edge clamping for bilinear.
 *
 * Why not libvips: sharp casts single-band float pipelines to 16-bit on output, and libvips'
 * upsampling is not pixel-centre aligned (measured: 0.25 input px shift at 2x), which would
 * shift a mask resampled back to the original grid.
 */

interface KernelDef {
  support: number;
  fn: (x: number) => number;
}

const KERNELS: Record<Exclude<ResizeMethod, 'nearest' | 'area'>, KernelDef> = {
  bilinear: { support: 1, fn: (x) => (x < 0 ? -x : x) < 1 ? 1 - (x < 0 ? -x : x) : 0 },
  // Keys cubic convolution with a = -0.5 (Catmull-Rom), as PIL and libvips use.
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      const t = x < 0 ? -x : x;
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  lanczos3: {
    support: 3,
    fn: (x) => {
      if (x === 0) return 1;
      if (x <= -3 || x >= 3) return 0;
      const px = Math.PI * x;
      return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
    },
  },
};

/** Per-output-index taps for one axis: first input index, count, and weights at a fixed stride. */
interface AxisPlan {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  stride: number;
}

const planCache = new Map<string, AxisPlan>();

function axisPlan(inSize: number, outSize: number, method: ResizeMethod): AxisPlan {
  const key = `${method}:${inSize}:${outSize}`;
  const cached = planCache.get(key);
  if (cached) return cached;
  const scale = inSize / outSize;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  let plan: AxisPlan;
  if (method === 'nearest') {
    // floor((j + 0.5) * scale): the input pixel whose area contains the output pixel's centre.
    const weights = new Float64Array(outSize).fill(1);
    for (let j = 0; j < outSize; j++) {
      start[j] = Math.min(inSize - 1, Math.floor((j + 0.5) * scale));
      count[j] = 1;
    }
    plan = { start, count, weights, stride: 1 };
  } else if (method === 'area') {
    plan = areaPlan(inSize, outSize, start, count);
  } else {
    const k = KERNELS[method];
    const filterScale = Math.max(scale, 1);
    const support = k.support * filterScale;
    const stride = Math.ceil(support) * 2 + 1;
    const weights = new Float64Array(outSize * stride);
    for (let j = 0; j < outSize; j++) {
      const centre = (j + 0.5) * scale;
      const lo = Math.max(0, Math.floor(centre - support));
      const hi = Math.min(inSize, Math.ceil(centre + support));
      let sum = 0;
      let n = 0;
      for (let i = lo; i < hi && n < stride; i++, n++) {
        const w = k.fn((i + 0.5 - centre) / filterScale);
        weights[j * stride + n] = w;
        sum += w;
      }
      // Trim zero-weight taps at both ends so the inner loops stay short.
      let first = 0;
      while (first < n - 1 && weights[j * stride + first] === 0) first++;
      let last = n - 1;
      while (last > first && weights[j * stride + last] === 0) last--;
      const m = last - first + 1;
      for (let t = 0; t < m; t++) weights[j * stride + t] = weights[j * stride + first + t] / (sum === 0 ? 1 : sum);
      for (let t = m; t < stride; t++) weights[j * stride + t] = 0;
      start[j] = lo + first;
      count[j] = m;
    }
    plan = { start, count, weights, stride };
  }
  if (planCache.size > 64) planCache.clear();
  planCache.set(key, plan);
  return plan;
}

/**
 * 'area': output pixel j is the mean of the input over its footprint [j * in/out, (j + 1) * in/out),
 * each input pixel weighted by the length of its overlap (OpenCV's INTER_AREA when shrinking). For an
 * integer factor f that is the plain mean of f x f blocks, as torch's 'area' mode and PIL's BOX filter
 * give; at 1024 -> 256 it reads 4 taps per output and axis where bilinear, widened by the factor,
 * reads 8. Weights are normalised to sum 1 like the kernels' (for integer factors 1/f each, exactly).
 */
function areaPlan(inSize: number, outSize: number, start: Int32Array, count: Int32Array): AxisPlan {
  const stride = Math.ceil(inSize / outSize) + 1;
  const weights = new Float64Array(outSize * stride);
  for (let j = 0; j < outSize; j++) {
    // The footprint's ends, j * in / out: exact at integer factors, rounded once otherwise.
    const lo = (j * inSize) / outSize;
    const hi = ((j + 1) * inSize) / outSize;
    const first = Math.floor(lo);
    const end = Math.min(inSize, Math.ceil(hi));
    // Every tap overlaps: pixel `first` contains lo (or starts at it), pixel end - 1 reaches hi.
    let sum = 0;
    const m = end - first;
    for (let t = 0; t < m; t++) {
      const w = Math.min(first + t + 1, hi) - Math.max(first + t, lo);
      weights[j * stride + t] = w;
      sum += w;
    }
    for (let t = 0; t < m; t++) weights[j * stride + t] /= sum;
    start[j] = first;
    count[j] = m;
  }
  return { start, count, weights, stride };
}

/**
 * What is resampled: a float image, or integer samples read through their table (a decoded frame
 * whose float image was never made, DecodedImage.samples). Both give the same values, bit for bit.
 */
export type PixelSource = Float32Array | LutSamples;

/** An optional per-pixel prologue v -> clamp(v * scale + offset, 0, 1), fused into the first pass. */
export interface AffineClamp {
  scale: number;
  offset: number;
}

/** Identity plan for an axis that is not resized. */
function identityPlan(size: number): AxisPlan {
  const start = new Int32Array(size);
  for (let j = 0; j < size; j++) start[j] = j;
  return { start, count: new Int32Array(size).fill(1), weights: new Float64Array(size).fill(1), stride: 1 };
}

/**
 * Resample a row-major single-channel image. Returns a new array; the input is not modified.
 * With `pre`, every input pixel is first mapped through the affine clamp (the intensity step).
 * No full-size intermediate, and a single float32 rounding at the end (see `sweep`).
 */
export function resampleFloat32(
  src: PixelSource,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  method: ResizeMethod,
  pre?: AffineClamp,
): Float32Array {
  const n = src instanceof Float32Array ? src.length : src.data.length;
  if (n !== inH * inW) throw new RangeError(`resample: ${n} values for ${inH}x${inW}`);
  if (!(src instanceof Float32Array) && pre && n >= src.lut.length) {
    // Fewer table entries than pixels: put the prologue into the table once (the same arithmetic and
    // float32 rounding per value as per pixel), so a pixel costs one lookup.
    src = { data: src.data, lut: mappedTable(src.lut, pre) };
    pre = undefined;
  }
  const out = new Float32Array(outH * outW);
  if (inH === 0 || inW === 0 || outH === 0 || outW === 0) return out;
  if (inH === outH && inW === outW) {
    // Same size on both axes: every tap is the pixel itself with weight 1, so the sweep would store
    // exactly the (prologue-mapped) input; do that in one pass (images already at model size).
    for (let y = 0; y < inH; y++) fillRow({ src, pre }, y * inW, inW, out, y * inW);
    return out;
  }
  sweep({ src, pre }, inH, inW, outH, outW, method, out, false);
  return out;
}

/**
 * The same values as resampleFloat32, streamed one output row at a time through a single reused
 * row buffer (valid only during the call), so a consumer such as thresholding never holds the
 * full-size float image.
 */
export function resampleRows(
  src: Float32Array,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  method: ResizeMethod,
  onRow: (y: number, row: Float32Array) => void,
  pre?: AffineClamp,
): void {
  if (src.length !== inH * inW) throw new RangeError(`resample: ${src.length} values for ${inH}x${inW}`);
  if (inH === 0 || inW === 0 || outH === 0 || outW === 0) {
    const zero = new Float32Array(outW);
    for (let y = 0; y < outH; y++) onRow(y, zero);
    return;
  }
  if (inH === outH && inW === outW && !pre) {
    for (let y = 0; y < outH; y++) onRow(y, src.subarray(y * inW, (y + 1) * inW));
    return;
  }
  sweep({ src, pre }, inH, inW, outH, outW, method, new Float32Array(outW), true, onRow);
}

/**
 * The vertical pass of one output row over columns [x0, x1): acc[x] = v0*w0 + v1*w1 + ... in tap
 * order, where tap t reads `rows` at bases[t] + x. The additions are the same, in the same order, as
 * one pass per tap with the first assigning (((v0*w0 + v1*w1) + v2*w2) + ..., all float64; V8 never
 * contracts to FMA), but up to four taps are summed per pass, so the accumulator is read and written
 * once per four taps instead of once per tap.
 */
function verticalPass(rows: Float32Array, bases: Int32Array, weights: Float64Array, wo: number, n: number, acc: Float64Array, x0: number, x1: number): void {
  let t = 0;
  while (t < n) {
    const k = n - t < 4 ? n - t : 4;
    const b0 = bases[t];
    const w0 = weights[wo + t];
    if (t === 0) {
      if (k === 4) {
        const b1 = bases[1], b2 = bases[2], b3 = bases[3];
        const w1 = weights[wo + 1], w2 = weights[wo + 2], w3 = weights[wo + 3];
        for (let x = x0; x < x1; x++) acc[x] = rows[b0 + x] * w0 + rows[b1 + x] * w1 + rows[b2 + x] * w2 + rows[b3 + x] * w3;
      } else if (k === 3) {
        const b1 = bases[1], b2 = bases[2];
        const w1 = weights[wo + 1], w2 = weights[wo + 2];
        for (let x = x0; x < x1; x++) acc[x] = rows[b0 + x] * w0 + rows[b1 + x] * w1 + rows[b2 + x] * w2;
      } else if (k === 2) {
        const b1 = bases[1];
        const w1 = weights[wo + 1];
        for (let x = x0; x < x1; x++) acc[x] = rows[b0 + x] * w0 + rows[b1 + x] * w1;
      } else {
        for (let x = x0; x < x1; x++) acc[x] = rows[b0 + x] * w0;
      }
    } else if (k === 4) {
      const b1 = bases[t + 1], b2 = bases[t + 2], b3 = bases[t + 3];
      const w1 = weights[wo + t + 1], w2 = weights[wo + t + 2], w3 = weights[wo + t + 3];
      for (let x = x0; x < x1; x++) acc[x] = acc[x] + rows[b0 + x] * w0 + rows[b1 + x] * w1 + rows[b2 + x] * w2 + rows[b3 + x] * w3;
    } else if (k === 3) {
      const b1 = bases[t + 1], b2 = bases[t + 2];
      const w1 = weights[wo + t + 1], w2 = weights[wo + t + 2];
      for (let x = x0; x < x1; x++) acc[x] = acc[x] + rows[b0 + x] * w0 + rows[b1 + x] * w1 + rows[b2 + x] * w2;
    } else if (k === 2) {
      const b1 = bases[t + 1];
      const w1 = weights[wo + t + 1];
      for (let x = x0; x < x1; x++) acc[x] = acc[x] + rows[b0 + x] * w0 + rows[b1 + x] * w1;
    } else {
      for (let x = x0; x < x1; x++) acc[x] = acc[x] + rows[b0 + x] * w0;
    }
    t += k;
  }
}

/**
 * Output x of the horizontal pass: 0 + acc[s0]*w0 + acc[s0+1]*w1 + ... in tap order, float64 (the
 * leading 0 + is kept: it turns a -0 first product into +0, as the accumulate-from-zero loop did).
 */
function horizontalTap(acc: Float64Array, s0: number, m: number, weights: Float64Array, wx: number): number {
  if (m === 8) {
    return (
      0 +
      acc[s0] * weights[wx] +
      acc[s0 + 1] * weights[wx + 1] +
      acc[s0 + 2] * weights[wx + 2] +
      acc[s0 + 3] * weights[wx + 3] +
      acc[s0 + 4] * weights[wx + 4] +
      acc[s0 + 5] * weights[wx + 5] +
      acc[s0 + 6] * weights[wx + 6] +
      acc[s0 + 7] * weights[wx + 7]
    );
  }
  if (m === 4) return 0 + acc[s0] * weights[wx] + acc[s0 + 1] * weights[wx + 1] + acc[s0 + 2] * weights[wx + 2] + acc[s0 + 3] * weights[wx + 3];
  // Bilinear enlarging (masks back to the image grid).
  if (m === 2) return 0 + acc[s0] * weights[wx] + acc[s0 + 1] * weights[wx + 1];
  let sum = 0;
  for (let t = 0; t < m; t++) sum += acc[s0 + t] * weights[wx + t];
  return sum;
}

/** Where the input rows come from: a float32 image or table samples, optionally through the affine clamp. */
interface RowSource {
  src: PixelSource;
  pre: AffineClamp | undefined;
}

/**
 * One fused sweep per output row: the input rows it needs are transformed once each (a ring of
 * transformed rows, since the needed rows only move forward), combined vertically into a float64
 * row, then filtered horizontally into `out` (at row y's place, or at 0 when `perRow`, for a
 * one-row buffer handed to `onRow`).
 *
 * Rounding contract (the trainer's tensors depend on it, bit for bit): a transformed input value is
 * rounded to float32 once (the ring); the vertical taps are summed in float64 in tap order, first
 * tap assigning; the horizontal taps are summed in float64 from 0 in tap order; the result is
 * rounded to float32 once. verticalPass and horizontalTap keep exactly those operations.
 */
function sweep(
  source: RowSource,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  method: ResizeMethod,
  out: Float32Array,
  perRow: boolean,
  onRow?: (y: number, row: Float32Array) => void,
): void {
  const vp = inH === outH ? identityPlan(inH) : axisPlan(inH, outH, method);
  const hp = inW === outW ? null : axisPlan(inW, outW, method);
  const vStart = vp.start;
  const vCount = vp.count;
  const vWeights = vp.weights;
  const vStride = vp.stride;

  // Table samples (with the prologue, if any, already in the table): the vertical pass reads them
  // through the table in place. Filling a ring and reading it back cost more, even where each input
  // row is a tap of two output rows (bilinear at 4x: 3.3 against 5.2 ms for 1024² -> 256², bench/imaging.ts).
  const table = !source.pre && !(source.src instanceof Float32Array) ? source.src : null;
  // Otherwise a ring of input rows (already through the prologue and the table), slot = row %
  // ringSize; a plain float image is read in place.
  const ringSize = vStride;
  const inPlace = !source.pre && source.src instanceof Float32Array ? source.src : null;
  const ring = inPlace || table ? null : new Float32Array(ringSize * inW);
  const rows = inPlace ?? ring;
  const slotRow = new Int32Array(ringSize).fill(-1);
  const bases = new Int32Array(vStride);

  const acc = new Float64Array(inW);
  for (let y = 0; y < outH; y++) {
    const n = vCount[y];
    const wo = y * vStride;
    if (table) {
      for (let t = 0; t < n; t++) bases[t] = (vStart[y] + t) * inW;
      verticalPassTable(table.data, table.lut, bases, vWeights, wo, n, acc, inW);
    } else {
      fillRing(y);
      verticalPass(rows!, bases, vWeights, wo, n, acc, 0, inW);
    }
    const o = perRow ? 0 : y * outW;
    if (!hp) {
      for (let x = 0; x < outW; x++) out[o + x] = acc[x];
      if (onRow) onRow(y, out);
      continue;
    }
    const hStart = hp.start;
    const hCount = hp.count;
    const hWeights = hp.weights;
    const hStride = hp.stride;
    for (let x = 0; x < outW; x++) out[o + x] = horizontalTap(acc, hStart[x], hCount[x], hWeights, x * hStride);
    if (onRow) onRow(y, out);
  }

  /** Output row y's input rows: their ring slots into `bases`, filled where not already there. */
  function fillRing(y: number): void {
    for (let t = 0; t < vCount[y]; t++) {
      const r = vStart[y] + t;
      if (!ring) {
        bases[t] = r * inW;
        continue;
      }
      const slot = r % ringSize;
      const base = slot * inW;
      bases[t] = base;
      if (slotRow[slot] !== r) {
        fillRow(source, r * inW, inW, ring, base);
        slotRow[slot] = r;
      }
    }
  }
}

/**
 * verticalPass over table samples read in place: tap t's value at column x is lut[data[bases[t] + x]],
 * the float32 the ring would have held, combined with the same operations in the same order (groups of
 * up to four taps, the first assigning), so the result is the ring path's, bit for bit. A twin of
 * verticalPass because a per-element choice of reader inside these loops would cost what it saves.
 */
function verticalPassTable(data: Uint8Array | Uint16Array, lut: Float32Array, bases: Int32Array, weights: Float64Array, wo: number, n: number, acc: Float64Array, inW: number): void {
  let t = 0;
  while (t < n) {
    const k = n - t < 4 ? n - t : 4;
    const b0 = bases[t];
    const w0 = weights[wo + t];
    const first = t === 0;
    if (k === 4) {
      const b1 = bases[t + 1], b2 = bases[t + 2], b3 = bases[t + 3];
      const w1 = weights[wo + t + 1], w2 = weights[wo + t + 2], w3 = weights[wo + t + 3];
      if (first) for (let x = 0; x < inW; x++) acc[x] = lut[data[b0 + x]] * w0 + lut[data[b1 + x]] * w1 + lut[data[b2 + x]] * w2 + lut[data[b3 + x]] * w3;
      else for (let x = 0; x < inW; x++) acc[x] = acc[x] + lut[data[b0 + x]] * w0 + lut[data[b1 + x]] * w1 + lut[data[b2 + x]] * w2 + lut[data[b3 + x]] * w3;
    } else if (k === 3) {
      const b1 = bases[t + 1], b2 = bases[t + 2];
      const w1 = weights[wo + t + 1], w2 = weights[wo + t + 2];
      if (first) for (let x = 0; x < inW; x++) acc[x] = lut[data[b0 + x]] * w0 + lut[data[b1 + x]] * w1 + lut[data[b2 + x]] * w2;
      else for (let x = 0; x < inW; x++) acc[x] = acc[x] + lut[data[b0 + x]] * w0 + lut[data[b1 + x]] * w1 + lut[data[b2 + x]] * w2;
    } else if (k === 2) {
      const b1 = bases[t + 1];
      const w1 = weights[wo + t + 1];
      if (first) for (let x = 0; x < inW; x++) acc[x] = lut[data[b0 + x]] * w0 + lut[data[b1 + x]] * w1;
      else for (let x = 0; x < inW; x++) acc[x] = acc[x] + lut[data[b0 + x]] * w0 + lut[data[b1 + x]] * w1;
    } else if (first) {
      for (let x = 0; x < inW; x++) acc[x] = lut[data[b0 + x]] * w0;
    } else {
      for (let x = 0; x < inW; x++) acc[x] = acc[x] + lut[data[b0 + x]] * w0;
    }
    t += k;
  }
}

/** clamp(lut[r] * scale + offset, 0, 1) for every entry, rounded to float32 as fillRow stores it. */
function mappedTable(lut: Float32Array, pre: AffineClamp): Float32Array {
  const out = new Float32Array(lut.length);
  const { scale, offset } = pre;
  for (let r = 0; r < lut.length; r++) {
    const v = lut[r] * scale + offset;
    out[r] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return out;
}

/**
 * One input row into the ring (or the output): its values (through the table, for samples), then the
 * clamp's value when there is a prologue, rounded to float32 on the store.
 */
function fillRow(source: RowSource, srcBase: number, inW: number, ring: Float32Array, base: number): void {
  const src = source.src;
  const pre = source.pre;
  if (src instanceof Float32Array) {
    if (!pre) {
      ring.set(src.subarray(srcBase, srcBase + inW), base);
      return;
    }
    const scale = pre.scale;
    const offset = pre.offset;
    for (let x = 0; x < inW; x++) {
      const v = src[srcBase + x] * scale + offset;
      ring[base + x] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
    return;
  }
  const { data, lut } = src;
  if (!pre) {
    for (let x = 0; x < inW; x++) ring[base + x] = lut[data[srcBase + x]];
    return;
  }
  const scale = pre.scale;
  const offset = pre.offset;
  for (let x = 0; x < inW; x++) {
    const v = lut[data[srcBase + x]] * scale + offset;
    ring[base + x] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
}

/**
 * The foreground of `resampleFloat32(src, ..., 'bilinear')[i] > threshold`, for a positive threshold,
 * as row intervals (RowRuns, found in row-major order): no rows x cols image is made (at 1024² it
 * would be 1 MiB, most of it zeros every later consumer scans again). Only the outputs whose answer is
 * not already certain are computed: bilinear weights are >= 0 and sum to 1, so an output can exceed
 * no value it is drawn from, and fall below none. An output whose taps all lie at or below
 * threshold * (1 - 1e-6) is 0, one whose taps all lie at or above threshold * (1 + 1e-6) is 1 (the
 * margin is far above float64 accumulation error and the float32 rounding of the result); the others
 * (the boundary band, and NaN) are computed exactly as the sweep computes them. Input values are
 * classed once; per set of vertical taps, each input column is classed (all low / all high / mixed),
 * and runs of outputs drawing on all-low columns are skipped in one step. Network outputs are mostly
 * confident background (and foreground), so masks going back to a large image cost about their
 * boundary, not their area.
 */
export function bilinearAboveThresholdRuns(src: Float32Array, inH: number, inW: number, outH: number, outW: number, threshold: number): RowRuns {
  const runs = new RowRuns();
  if (src.length !== inH * inW) throw new RangeError(`resample: ${src.length} values for ${inH}x${inW}`);
  if (!(threshold > 0) || !Number.isFinite(threshold)) throw new RangeError(`bilinearAboveThresholdRuns: threshold must be a positive number, got ${threshold}`);
  if (inH === 0 || inW === 0 || outH === 0 || outW === 0) return runs;
  const low = threshold * (1 - 1e-6);
  const high = threshold * (1 + 1e-6);
  // Per input value: LOW (clearly low), HIGH (clearly high) or MIXED (near the threshold, or NaN);
  // per input row: whether any value is not clearly low.
  const LOW = 0;
  const MIXED = 1;
  const HIGH = 2;
  const cls = new Uint8Array(inH * inW);
  const rowLive = new Uint8Array(inH);
  for (let r = 0; r < inH; r++) {
    const o = r * inW;
    let live = 0;
    for (let x = 0; x < inW; x++) {
      const v = src[o + x];
      const k = v <= low ? LOW : v >= high ? HIGH : MIXED;
      cls[o + x] = k;
      live |= k;
    }
    rowLive[r] = live === 0 ? 0 : 1;
  }
  const vp = inH === outH ? identityPlan(inH) : axisPlan(inH, outH, 'bilinear');
  const hp = inW === outW ? identityPlan(inW) : axisPlan(inW, outW, 'bilinear');
  const { start: hStart, count: hCount, weights: hWeights, stride: hStride } = hp;
  // reach[c]: the first output whose taps extend past column c (outputs before it draw on columns
  // < c... and, the plan's starts being nondecreasing, on columns >= the current one). Only valid
  // when starts and ends never decrease; otherwise outputs are visited one by one.
  const reach = new Int32Array(inW + 1);
  let monotone = true;
  for (let x = 1; x < outW; x++) {
    if (hStart[x] < hStart[x - 1] || hStart[x] + hCount[x] < hStart[x - 1] + hCount[x - 1]) monotone = false;
  }
  for (let c = 0, x = 0; c <= inW; c++) {
    while (x < outW && hStart[x] + hCount[x] <= c) x++;
    reach[c] = x;
  }
  const colCls = new Uint8Array(inW);
  // nextLive[c]: the first column >= c that is not all-low (inW when none).
  const nextLive = new Int32Array(inW + 1);
  const stamp = new Int32Array(inW).fill(-1);
  const acc = new Float64Array(inW);
  const bases = new Int32Array(vp.stride);
  let classedR0 = -1;
  let classedN = -1;
  for (let y = 0; y < outH; y++) {
    const r0 = vp.start[y];
    const n = vp.count[y];
    let live = 0;
    for (let r = r0; r < r0 + n; r++) live |= rowLive[r];
    if (live === 0) continue; // every input this row draws on is clearly low: it stays 0
    if (r0 !== classedR0 || n !== classedN) {
      for (let c = 0; c < inW; c++) {
        let all = cls[r0 * inW + c];
        for (let r = r0 + 1; r < r0 + n; r++) if (cls[r * inW + c] !== all) all = MIXED;
        colCls[c] = all;
      }
      nextLive[inW] = inW;
      for (let c = inW - 1; c >= 0; c--) nextLive[c] = colCls[c] === LOW ? nextLive[c + 1] : c;
      classedR0 = r0;
      classedN = n;
    }
    for (let t = 0; t < n; t++) bases[t] = (r0 + t) * inW;
    const wo = y * vp.stride;
    let x = 0;
    while (x < outW) {
      const s0 = hStart[x];
      const m = hCount[x];
      const nz = nextLive[s0];
      if (nz >= s0 + m) {
        // Every tap is clearly low: 0, and so are the following outputs whose taps end before nz.
        if (nz === inW && monotone) break;
        const next = monotone ? reach[nz] : x + 1;
        x = next > x ? next : x + 1;
        continue;
      }
      let allHigh = true;
      for (let t = 0; t < m; t++) {
        if (colCls[s0 + t] !== HIGH) {
          allHigh = false;
          break;
        }
      }
      if (allHigh) {
        runs.add(y, x);
        x++;
        continue;
      }
      // The boundary band: the sweep's vertical pass for the columns this output reads (once per
      // output row), its horizontal pass, and the float32 rounding resampleFloat32 would store.
      for (let c = s0; c < s0 + m; c++) {
        if (stamp[c] !== y) {
          verticalPass(src, bases, vp.weights, wo, n, acc, c, c + 1);
          stamp[c] = y;
        }
      }
      if (isForeground(Math.fround(horizontalTap(acc, s0, m, hWeights, x * hStride)), threshold)) runs.add(y, x);
      x++;
    }
  }
  return runs;
}
