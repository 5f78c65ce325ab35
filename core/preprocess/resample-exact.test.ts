/**
 * Bit-identity of the fused resampling kernels against the implementation they replaced
 * (testing/resample-oracle.ts, a verbatim copy): the trainer and the service share this code, so any
 * change in a single output bit would be train/serve skew. Seeded random images and sizes, every
 * resize method, with and without the intensity prologue, shrinking, enlarging and integer factors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32 } from '../../synth/rng.ts';
import { bilinearAboveThreshold, resampleFloat32, resampleRows, type AffineClamp } from './resample.ts';
import type { ResizeMethod } from './spec.ts';
import { oracleBilinearAboveThreshold, oracleResampleFloat32, oracleResampleRows } from './testing/resample-oracle.ts';

const METHODS: ResizeMethod[] = ['nearest', 'bilinear', 'bicubic', 'lanczos3'];

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

test('bilinearAboveThreshold: identical masks to the oracle on random maps and thresholds', () => {
  const rng = mulberry32(31337);
  for (let iter = 0; iter < 300; iter++) {
    const [inH, inW, outH, outW] = sizes(rng);
    const kind = rng();
    const src = Float32Array.from({ length: inH * inW }, (_, i) =>
      kind < 0.3 ? rng() : kind < 0.6 ? (((i * 7) % 11) / 10 > 0.5 ? 0.9 : 0.05) : kind < 0.8 ? 0.5 + (rng() - 0.5) * 1e-6 : rng() < 0.5 ? 0 : 1,
    );
    const threshold = kind < 0.6 ? 0.05 + rng() * 0.9 : 0.5;
    const a = bilinearAboveThreshold(src, inH, inW, outH, outW, threshold);
    const e = oracleBilinearAboveThreshold(src, inH, inW, outH, outW, threshold);
    assert.deepEqual(a, e, `#${iter} ${inH}x${inW}->${outH}x${outW} t=${threshold}`);
  }
});
