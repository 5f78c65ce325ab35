/**
 * Bit-identity of the fused resampling kernels against the implementation they replaced
 * (testing/resample-oracle.ts, a verbatim copy): the trainer and the service share this code, so any
 * change in a single output bit would be train/serve skew. Seeded random images and sizes, every
 * resize method, with and without the intensity prologue, shrinking, enlarging and integer factors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32 } from '../../synth/rng.ts';
import { resampleFloat32, resampleRows, type AffineClamp } from './resample.ts';
import { aboveThresholdBytes } from './testing/threshold-bytes.ts';
import { oracleBilinearAboveThreshold, oracleResampleFloat32, oracleResampleRows, type OracleResizeMethod } from './testing/resample-oracle.ts';

const METHODS: OracleResizeMethod[] = ['nearest', 'bilinear', 'bicubic', 'lanczos3'];

function assertSameBits(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, what);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i] && !(Number.isNaN(actual[i]) && Number.isNaN(expected[i]))) {
      assert.fail(`${what}: index ${i}: ${actual[i]} (0x${a[i]!.toString(16)}) vs ${expected[i]} (0x${e[i]!.toString(16)})`);
    }
  }
}

/** Sizes: random small ones, and the integer factors the flagship path uses (4x, 2x, 3x) both ways. */
function sizes(rng: () => number): [number, number, number, number] {
  const pick = rng();
  const r = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
  if (pick < 0.4) return [r(1, 40), r(1, 40), r(1, 40), r(1, 40)];
  const f = [2, 3, 4, 5, 8][r(0, 4)]!;
  const oh = r(1, 12);
  const ow = r(1, 12);
  return pick < 0.8 ? [oh * f, ow * f, oh, ow] : [oh, ow, oh * f, ow * f];
}

function randomImage(rng: () => number, n: number): Float32Array {
  const kind = rng();
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (kind < 0.3) out[i] = Math.floor(rng() * 256); // 8-bit values
    else if (kind < 0.6) out[i] = (rng() - 0.3) * 4000; // CT-like, negatives
    else out[i] = rng() < 0.1 ? (rng() < 0.5 ? -0 : 0) : rng(); // unit range with zeros of both signs
  }
  return out;
}

function randomPre(rng: () => number): AffineClamp | undefined {
  const k = rng();
  if (k < 0.25) return undefined;
  if (k < 0.5) return { scale: 1 / 255, offset: 0 };
  if (k < 0.6) return { scale: 0, offset: 0 };
  return { scale: (rng() - 0.2) * 0.01, offset: rng() - 0.5 };
}

test('resampleFloat32 and resampleRows: bit-identical to the oracle, every method, with and without the prologue', () => {
  const rng = mulberry32(20240611);
  for (let iter = 0; iter < 400; iter++) {
    const [inH, inW, outH, outW] = sizes(rng);
    const method = METHODS[iter % METHODS.length]!;
    const src = randomImage(rng, inH * inW);
    const pre = randomPre(rng);
    const what = `#${iter} ${method} ${inH}x${inW}->${outH}x${outW} pre=${JSON.stringify(pre)}`;
    assertSameBits(resampleFloat32(src, inH, inW, outH, outW, method, pre), oracleResampleFloat32(src, inH, inW, outH, outW, method, pre), what);
    const rows: Float32Array[] = [];
    const oracleRows: Float32Array[] = [];
    resampleRows(src, inH, inW, outH, outW, method, (_, r) => rows.push(r.slice()), pre);
    oracleResampleRows(src, inH, inW, outH, outW, method, (_, r) => oracleRows.push(r.slice()), pre);
    assert.equal(rows.length, oracleRows.length, what);
    rows.forEach((r, y) => assertSameBits(r, oracleRows[y]!, `${what} row ${y}`));
  }
});

test('the flagship size: 1024x1024 -> 256x256 bilinear (and 512) through min-max, bit-identical', () => {
  const rng = mulberry32(7);
  const src = Float32Array.from({ length: 1024 * 1024 }, () => Math.floor(rng() * 256));
  const pre = { scale: 1 / 253, offset: -2 / 253 };
  for (const out of [256, 512]) {
    assertSameBits(resampleFloat32(src, 1024, 1024, out, out, 'bilinear', pre), oracleResampleFloat32(src, 1024, 1024, out, out, 'bilinear', pre), `1024->${out}`);
  }
});

test('bilinearAboveThresholdRuns: identical masks to the oracle on random maps and thresholds', () => {
  const rng = mulberry32(31337);
  for (let iter = 0; iter < 300; iter++) {
    const [inH, inW, outH, outW] = sizes(rng);
    const kind = rng();
    const src = Float32Array.from({ length: inH * inW }, (_, i) =>
      kind < 0.3 ? rng() : kind < 0.6 ? (((i * 7) % 11) / 10 > 0.5 ? 0.9 : 0.05) : kind < 0.8 ? 0.5 + (rng() - 0.5) * 1e-6 : rng() < 0.5 ? 0 : 1,
    );
    const threshold = kind < 0.6 ? 0.05 + rng() * 0.9 : 0.5;
    const a = aboveThresholdBytes(src, inH, inW, outH, outW, threshold);
    const e = oracleBilinearAboveThreshold(src, inH, inW, outH, outW, threshold);
    assert.deepEqual(a, e, `#${iter} ${inH}x${inW}->${outH}x${outW} t=${threshold}`);
  }
});

/**
 * 'area' against a reference written from its definition, in two dimensions at once (not separable,
 * no plans): output (y, x) = sum over input pixels of (row overlap x column overlap x value) / footprint
 * area, where pixel (r, c) covers [r, r + 1) x [c, c + 1) and output (y, x) covers
 * [y * inH / outH, (y + 1) * inH / outH) x [x * inW / outW, ...).
 */
function areaReference(src: Float32Array, inH: number, inW: number, outH: number, outW: number, pre?: AffineClamp): Float64Array {
  const v = (i: number) => {
    if (!pre) return src[i]!;
    const t = src[i]! * pre.scale + pre.offset;
    return Math.fround(t < 0 ? 0 : t > 1 ? 1 : t);
  };
  const overlap = (p: number, lo: number, hi: number) => Math.max(0, Math.min(p + 1, hi) - Math.max(p, lo));
  const out = new Float64Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const y0 = (y * inH) / outH, y1 = ((y + 1) * inH) / outH;
    for (let x = 0; x < outW; x++) {
      const x0 = (x * inW) / outW, x1 = ((x + 1) * inW) / outW;
      let sum = 0;
      for (let r = Math.floor(y0); r < Math.ceil(y1); r++) {
        for (let c = Math.floor(x0); c < Math.ceil(x1); c++) sum += overlap(r, y0, y1) * overlap(c, x0, x1) * v(r * inW + c);
      }
      out[y * outW + x] = sum / ((y1 - y0) * (x1 - x0));
    }
  }
  return out;
}

test("'area' equals the overlap-weighted mean of each output's footprint, shrinking, enlarging and at any factor", () => {
  const rng = mulberry32(20261130);
  for (let iter = 0; iter < 300; iter++) {
    const [inH, inW, outH, outW] = sizes(rng);
    const src = randomImage(rng, inH * inW);
    const pre = randomPre(rng);
    const what = `#${iter} area ${inH}x${inW}->${outH}x${outW} pre=${JSON.stringify(pre)}`;
    const got = resampleFloat32(src, inH, inW, outH, outW, 'area', pre);
    const want = areaReference(src, inH, inW, outH, outW, pre);
    let scale = 1e-30;
    for (const w of want) scale = Math.max(scale, Math.abs(w));
    for (let i = 0; i < got.length; i++) {
      // One float32 rounding of the result, plus float64 summation-order differences.
      if (!(Math.abs(got[i]! - want[i]!) <= 1e-6 * scale)) assert.fail(`${what}: index ${i}: ${got[i]} vs ${want[i]}`);
    }
    const rows: Float32Array[] = [];
    resampleRows(src, inH, inW, outH, outW, 'area', (_, r) => rows.push(r.slice()), pre);
    rows.forEach((r, y) => assertSameBits(r, got.subarray(y * outW, (y + 1) * outW), `${what} row ${y}`));
  }
});

test("'area' at power-of-two factors is the f x f block mean rounded once to float32, bit for bit (1024 -> 256 included)", () => {
  const rng = mulberry32(7);
  for (const [inH, inW, f] of [[1024, 1024, 4], [64, 48, 2], [64, 64, 8], [12, 20, 4]] as const) {
    // 8-bit levels through the 0..255 -> 0..1 prologue, as a radiograph's 'range' intensity gives.
    const src = Float32Array.from({ length: inH * inW }, () => Math.floor(rng() * 256));
    const pre = { scale: 1 / 255, offset: 0 };
    const got = resampleFloat32(src, inH, inW, inH / f, inW / f, 'area', pre);
    const want = new Float32Array(got.length);
    for (let y = 0; y < inH / f; y++) {
      for (let x = 0; x < inW / f; x++) {
        // float32 values times 1/f, summed in float64: exact, so any order gives these bits.
        let sum = 0;
        for (let r = 0; r < f; r++) for (let c = 0; c < f; c++) sum += Math.fround(src[(y * f + r) * inW + x * f + c]! * pre.scale + pre.offset);
        want[y * (inW / f) + x] = sum / (f * f);
      }
    }
    assertSameBits(got, want, `${inH}x${inW} / ${f}`);
  }
});

test('table samples read in place give the float image\'s values, bit for bit', () => {
  const rng = mulberry32(99);
  for (let iter = 0; iter < 200; iter++) {
    const [inH, inW, outH, outW] = sizes(rng);
    const method = (['area', 'nearest', 'bilinear', 'bicubic', 'lanczos3'] as const)[iter % 5];
    const bits16 = rng() < 0.5;
    const lut = Float32Array.from({ length: bits16 ? 4096 : 256 }, () => (rng() - 0.3) * 300);
    const data = bits16 ? Uint16Array.from({ length: inH * inW }, () => Math.floor(rng() * 4096)) : Uint8Array.from({ length: inH * inW }, () => Math.floor(rng() * 256));
    const pixels = Float32Array.from(data, (v) => lut[v]!);
    const pre = randomPre(rng);
    const what = `#${iter} ${method} ${bits16 ? 16 : 8}-bit ${inH}x${inW}->${outH}x${outW} pre=${JSON.stringify(pre)}`;
    assertSameBits(resampleFloat32({ data, lut }, inH, inW, outH, outW, method, pre), resampleFloat32(pixels, inH, inW, outH, outW, method, pre), what);
  }
});
