/**
 * Oracle for the bit-identity property tests: resample.ts as it was before the fused kernels
 * (commit f379cff), verbatim but for the exports. Never optimise this file: it is the reference.
 */
import type { ResizeMethod as AnyResizeMethod } from '../spec.ts';
import { isForeground } from '../../segmentation/threshold.ts';

/** The methods this reference predates ('area' has its own oracle in resample-exact.test.ts). */
export type OracleResizeMethod = Exclude<AnyResizeMethod, 'area'>;
type ResizeMethod = OracleResizeMethod;

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

const KERNELS: Record<Exclude<ResizeMethod, 'nearest'>, KernelDef> = {
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

/** An optional per-pixel prologue v -> clamp(v * scale + offset, 0, 1), fused into the first pass. */
interface AffineClamp {
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
export function oracleResampleFloat32(
  src: Float32Array,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  method: ResizeMethod,
  pre?: AffineClamp,
): Float32Array {
  if (src.length !== inH * inW) throw new RangeError(`resample: ${src.length} values for ${inH}x${inW}`);
  const out = new Float32Array(outH * outW);
  if (inH === 0 || inW === 0 || outH === 0 || outW === 0) return out;
  if (inH === outH && inW === outW) {
    // Same size on both axes: every tap is the pixel itself with weight 1, so the sweep would store
    // exactly the (prologue-mapped) input; do that in one pass (images already at model size).
    if (!pre) {
      out.set(src);
      return out;
    }
    const { scale, offset } = pre;
    for (let i = 0; i < out.length; i++) {
      const v = src[i] * scale + offset;
      out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
    return out;
  }
  sweep(src, inH, inW, outH, outW, method, pre, out, false);
  return out;
}

/**
 * The same values as resampleFloat32, streamed one output row at a time through a single reused
 * row buffer (valid only during the call), so a consumer such as thresholding never holds the
 * full-size float image.
 */
export function oracleResampleRows(
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
  sweep(src, inH, inW, outH, outW, method, pre, new Float32Array(outW), true, onRow);
}

/**
 * One fused sweep per output row: the input rows it needs are transformed once each (a ring of
 * transformed rows, since the needed rows only move forward), combined vertically into a float64
 * row, then filtered horizontally into `out` (at row y's place, or at 0 when `perRow`, for a
 * one-row buffer handed to `onRow`).
 */
function sweep(
  src: Float32Array,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  method: ResizeMethod,
  pre: AffineClamp | undefined,
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

  // Ring of input rows (already through the prologue), slot = row % ringSize.
  const ringSize = vStride;
  const ring = pre ? new Float32Array(ringSize * inW) : null;
  const slotRow = new Int32Array(ringSize).fill(-1);
  const scale = pre ? pre.scale : 1;
  const offset = pre ? pre.offset : 0;

  const acc = new Float64Array(inW);
  for (let y = 0; y < outH; y++) {
    const n = vCount[y];
    const wo = y * vStride;
    for (let t = 0; t < n; t++) {
      const r = vStart[y] + t;
      const w = vWeights[wo + t];
      let rowBuf: Float32Array;
      let base: number;
      if (ring) {
        const slot = r % ringSize;
        base = slot * inW;
        if (slotRow[slot] !== r) {
          const srcBase = r * inW;
          for (let x = 0; x < inW; x++) {
            const v = src[srcBase + x] * scale + offset;
            ring[base + x] = v < 0 ? 0 : v > 1 ? 1 : v;
          }
          slotRow[slot] = r;
        }
        rowBuf = ring;
      } else {
        rowBuf = src;
        base = r * inW;
      }
      // The first tap assigns, so the accumulator needs no clearing pass.
      if (t === 0) for (let x = 0; x < inW; x++) acc[x] = rowBuf[base + x] * w;
      else for (let x = 0; x < inW; x++) acc[x] += rowBuf[base + x] * w;
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
    for (let x = 0; x < outW; x++) {
      const s0 = hStart[x];
      const m = hCount[x];
      const wx = x * hStride;
      let sum = 0;
      if (m === 2) {
        // Bilinear enlarging (masks back to the image grid): the same two additions, unrolled.
        sum += acc[s0] * hWeights[wx];
        sum += acc[s0 + 1] * hWeights[wx + 1];
      } else {
        for (let t = 0; t < m; t++) sum += acc[s0 + t] * hWeights[wx + t];
      }
      out[o + x] = sum;
    }
    if (onRow) onRow(y, out);
  }
}

/**
 * `resampleFloat32(src, ..., 'bilinear')[i] > threshold` as a 0/1 mask, for a positive threshold,
 * without computing the outputs whose answer is already certain: bilinear weights are >= 0 and sum
 * to 1, so an output can exceed no value it is drawn from, and fall below none. An output row whose
 * input rows all lie at or below threshold * (1 - 1e-6) is 0, one whose inputs all lie at or above
 * threshold * (1 + 1e-6) is 1 (the margin is far above float64 accumulation error and the float32
 * rounding of the result); in the other rows only the columns near a value above the lower bound are
 * computed, exactly as the sweep computes them. Network outputs are mostly confident background
 * (and foreground), so masks going back to a large image cost about their boundary, not their area.
 */
export function oracleBilinearAboveThreshold(src: Float32Array, inH: number, inW: number, outH: number, outW: number, threshold: number): Uint8Array {
  if (src.length !== inH * inW) throw new RangeError(`resample: ${src.length} values for ${inH}x${inW}`);
  if (!(threshold > 0) || !Number.isFinite(threshold)) throw new RangeError(`bilinearAboveThreshold: threshold must be a positive number, got ${threshold}`);
  const out = new Uint8Array(outH * outW);
  if (inH === 0 || inW === 0 || outH === 0 || outW === 0) return out;
  const low = threshold * (1 - 1e-6);
  const high = threshold * (1 + 1e-6);
  // Per input row: the first/last column holding a value not clearly low (NaN included), and
  // whether every value is clearly high.
  const firstLive = new Int32Array(inH);
  const lastLive = new Int32Array(inH);
  const allHigh = new Uint8Array(inH);
  for (let r = 0; r < inH; r++) {
    const o = r * inW;
    let first = -1;
    let last = -1;
    let high1 = 1;
    for (let x = 0; x < inW; x++) {
      const v = src[o + x];
      if (!(v <= low)) {
        if (first < 0) first = x;
        last = x;
      }
      if (!(v >= high)) high1 = 0;
    }
    firstLive[r] = first;
    lastLive[r] = last;
    allHigh[r] = high1;
  }
  const vp = inH === outH ? identityPlan(inH) : axisPlan(inH, outH, 'bilinear');
  const hp = inW === outW ? identityPlan(inW) : axisPlan(inW, outW, 'bilinear');
  const { start: hStart, count: hCount, weights: hWeights, stride: hStride } = hp;
  const acc = new Float64Array(inW);
  for (let y = 0; y < outH; y++) {
    const r0 = vp.start[y];
    const n = vp.count[y];
    let cLo = inW;
    let cHi = -1;
    let high1 = 1;
    for (let r = r0; r < r0 + n; r++) {
      if (firstLive[r] >= 0) {
        if (firstLive[r] < cLo) cLo = firstLive[r];
        if (lastLive[r] > cHi) cHi = lastLive[r];
      }
      high1 &= allHigh[r];
    }
    const o = y * outW;
    if (cHi < 0) continue; // every input this row draws on is clearly low: it stays 0
    if (high1) {
      out.fill(1, o, o + outW);
      continue;
    }
    // Only outputs with a tap in [cLo, cHi] can be 1; the others draw on clearly low values alone.
    // Skipped from both ends while that holds; everything between is computed (exact either way).
    let x0 = 0;
    while (x0 < outW && (hStart[x0] + hCount[x0] <= cLo || hStart[x0] > cHi)) x0++;
    if (x0 === outW) continue;
    let x1 = outW - 1;
    while (hStart[x1] + hCount[x1] <= cLo || hStart[x1] > cHi) x1--;
    let a0 = inW;
    let a1 = 0;
    for (let x = x0; x <= x1; x++) {
      if (hStart[x] < a0) a0 = hStart[x];
      if (hStart[x] + hCount[x] > a1) a1 = hStart[x] + hCount[x];
    }
    // The sweep's vertical pass (first tap assigns) over the columns those outputs read...
    const wo = y * vp.stride;
    for (let t = 0; t < n; t++) {
      const base = (r0 + t) * inW;
      const w = vp.weights[wo + t];
      if (t === 0) for (let x = a0; x < a1; x++) acc[x] = src[base + x] * w;
      else for (let x = a0; x < a1; x++) acc[x] += src[base + x] * w;
    }
    // ...its horizontal pass, and the float32 rounding resampleFloat32 would store.
    for (let x = x0; x <= x1; x++) {
      const s0 = hStart[x];
      const m = hCount[x];
      const wx = x * hStride;
      let sum = 0;
      if (m === 2) {
        sum += acc[s0] * hWeights[wx];
        sum += acc[s0 + 1] * hWeights[wx + 1];
      } else {
        for (let t = 0; t < m; t++) sum += acc[s0 + t] * hWeights[wx + t];
      }
      out[o + x] = isForeground(Math.fround(sum), threshold) ? 1 : 0;
    }
  }
  return out;
}
