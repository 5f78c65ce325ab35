/**
 * Storage precision of cached tensors. Values are quantised per tensor against its own [lo, hi]
 * range, so the bound holds whatever the intensity mapping produced:
 *   |x - dequantise(quantise(x))| <= (hi - lo) / (2 * levels) + float32 rounding (2^-24 * max|x|)
 * For tensors in 0..1 that is 7.7e-6 for uint16 (levels 65535) and 2.0e-3 for uint8 (levels 255).
 */
export type CacheDtype = 'float32' | 'uint16' | 'uint8';

export const CACHE_DTYPES: readonly CacheDtype[] = ['float32', 'uint16', 'uint8'];

const LEVELS: Record<Exclude<CacheDtype, 'float32'>, number> = { uint16: 65535, uint8: 255 };

export function bytesPerValue(d: CacheDtype): number {
  return d === 'float32' ? 4 : d === 'uint16' ? 2 : 1;
}

/** Worst-case absolute error of a stored value for a tensor spanning `range` (0 for float32). */
export function quantisationBound(d: CacheDtype, range = 1, maxAbs = range): number {
  return d === 'float32' ? 0 : range / (2 * LEVELS[d]) + maxAbs * 2 ** -24;
}

export interface Quantised {
  bytes: Uint8Array;
  lo: number;
  hi: number;
}

export function quantise(x: Float32Array, d: CacheDtype): Quantised {
  if (d === 'float32') return { bytes: new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength)), lo: 0, hi: 0 };
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    if (x.length === 0) return { bytes: new Uint8Array(0), lo: 0, hi: 0 };
    throw new RangeError('tensor holds non-finite values');
  }
  const levels = LEVELS[d];
  const scale = hi > lo ? levels / (hi - lo) : 0;
  const q = d === 'uint16' ? new Uint16Array(x.length) : new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) q[i] = Math.round((x[i]! - lo) * scale);
  return { bytes: new Uint8Array(q.buffer), lo, hi };
}

/** `bytes` may sit at any offset; it is copied when the typed view would be misaligned. */
export function dequantise(bytes: Uint8Array, n: number, d: CacheDtype, lo: number, hi: number): Float32Array {
  const bpv = bytesPerValue(d);
  if (bytes.byteLength !== n * bpv) throw new RangeError(`expected ${n * bpv} bytes, got ${bytes.byteLength}`);
  const aligned = bytes.byteOffset % bpv === 0 ? bytes : bytes.slice();
  if (d === 'float32') return new Float32Array(aligned.buffer.slice(aligned.byteOffset, aligned.byteOffset + aligned.byteLength));
  const q = d === 'uint16' ? new Uint16Array(aligned.buffer, aligned.byteOffset, n) : aligned;
  const step = (hi - lo) / LEVELS[d];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + q[i]! * step;
  return out;
}
