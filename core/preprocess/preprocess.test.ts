import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DecodedImage } from '../dicom/types.ts';
import { createMask, type Mask } from '../mask.ts';
import { dice } from '../metrics/index.ts';
import {
  applyIntensity,
  bilinearAboveThresholdRuns,
  maskToModel,
  parsePreprocessSpec,
  PreprocessError,
  resampleFloat32,
  resampleRows,
  resizeMask,
  toTensor,
  type PreprocessSpec,
} from './index.ts';
import { probabilitiesToMask } from '../segmentation/postprocess.ts';
import { maskToRuns, rowRunsToRuns } from '../rle/runs.ts';
import { aboveThresholdBytes } from './testing/threshold-bytes.ts';

function image(rows: number, columns: number, values: ArrayLike<number>, extra: Partial<DecodedImage> = {}): DecodedImage {
  const pixels = Float32Array.from(values);
  let min = Infinity;
  let max = -Infinity;
  for (const v of pixels) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  return {
    rows, columns, frame: 0, numberOfFrames: 1, pixels, min, max,
    photometricInterpretation: 'MONOCHROME2', bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, samplesPerPixel: 1,
    transferSyntaxUid: '1.2.840.10008.1.2.1', transferSyntaxName: 'Explicit VR Little Endian',
    ...extra,
  };
}

function spec(partial: Record<string, unknown>): PreprocessSpec {
  return parsePreprocessSpec({ size: { height: 1, width: 4 }, ...partial });
}

function close(actual: Float32Array, expected: number[], eps = 1e-6): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i]! - expected[i]!) <= eps, `index ${i}: ${actual[i]} vs ${expected[i]}`);
}

const row = image(1, 4, [-100, 0, 50, 300]);

test('minmax maps the image range to 0..1', async () => {
  close(await toTensor(row, spec({ intensity: { kind: 'minmax' } })), [0, 0.25, 0.375, 1]);
  // A constant image maps to 0, not NaN.
  close(await toTensor(image(1, 4, [7, 7, 7, 7]), spec({ intensity: { kind: 'minmax' } })), [0, 0, 0, 0]);
});

test('zscore clips at +-clip std and maps linearly to 0..1', async () => {
  // mean 62.5, population std = sqrt(((-162.5)^2 + 62.5^2 + 12.5^2 + 237.5^2)/4)
  const px = [-100, 0, 50, 300];
  const mean = 62.5;
  const std = Math.sqrt(px.reduce((a, v) => a + (v - mean) ** 2, 0) / 4);
  const clip = 1;
  const expected = px.map((v) => Math.min(1, Math.max(0, ((v - mean) / std + clip) / (2 * clip))));
  assert.equal(expected[3], 1, 'the largest value is beyond +1 std and clipped');
  close(await toTensor(row, spec({ intensity: { kind: 'zscore', clip } })), expected);
  close(await toTensor(image(1, 4, [3, 3, 3, 3]), spec({ intensity: { kind: 'zscore' } })), [0.5, 0.5, 0.5, 0.5]);
});

test('window is the linear VOI: clamp to [c - w/2, c + w/2] then 0..1', async () => {
  // c=40, w=400 -> [-160, 240]
  close(await toTensor(row, spec({ intensity: { kind: 'window', center: 40, width: 400 } })), [60 / 400, 160 / 400, 210 / 400, 1]);
  close(await toTensor(image(1, 4, [-1000, -160, 240, 1000]), spec({ intensity: { kind: 'window', center: 40, width: 400 } })), [0, 0, 1, 1]);
});

test("dicom-window uses the file's window, else the fallback", async () => {
  const withWindow = image(1, 4, [-100, 0, 50, 300], { window: { center: 0, width: 200 } });
  close(await toTensor(withWindow, spec({ intensity: { kind: 'dicom-window' } })), [0, 0.5, 0.75, 1]);
  close(await toTensor(row, spec({ intensity: { kind: 'dicom-window' } })), [0, 0.25, 0.375, 1]); // minmax fallback
  const z = await toTensor(row, spec({ intensity: { kind: 'dicom-window', fallback: 'zscore' } }));
  close(z, Array.from(await toTensor(row, spec({ intensity: { kind: 'zscore', clip: 3 } }))));
});

test('range maps low..high to 0..1 and clamps', async () => {
  close(await toTensor(row, spec({ intensity: { kind: 'range', low: 0, high: 200 } })), [0, 0, 0.25, 1]);
});

test('normalize and channel replication', async () => {
  const t = await toTensor(row, spec({ intensity: { kind: 'range', low: 0, high: 200 }, channels: 3, normalize: { mean: [0.5, 0, 0.25], std: [0.5, 1, 0.25] } }));
  close(t, [-1, -1, -0.5, 1, 0, 0, 0.25, 1, -1, -1, 0, 3]);
  const one = await toTensor(row, spec({ intensity: { kind: 'range', low: 0, high: 200 }, channels: 2, normalize: { mean: [0.5], std: [0.5] } }));
  close(one, [-1, -1, -0.5, 1, -1, -1, -0.5, 1]);
});

test('resize: a linear ramp stays exactly linear and pixel-centre aligned, shrinking and enlarging', () => {
  const n = 64;
  const ramp = Float32Array.from({ length: n }, (_, i) => i);
  for (const method of ['bilinear', 'bicubic'] as const) {
    for (const out of [16, 17, 32, 128, 200]) {
      const r = resampleFloat32(ramp, 1, n, 1, out, method);
      const s = n / out;
      // Away from the borders (where taps are dropped) output j sits at input (j + 0.5) * s - 0.5.
      // Exact for enlarging and integer factors; a widened kernel sampled at a fractional phase
      // (64->17) has a small first-moment error, as in PIL, but no drift.
      const tol = s <= 1 || Number.isInteger(s) ? 1e-3 : 0.05;
      const margin = Math.ceil((2 * Math.max(s, 1) + 1) / s) + 1; // outputs whose taps reach a border
      for (let j = margin; j < out - margin; j++) {
        assert.ok(Math.abs(r[j]! - ((j + 0.5) * s - 0.5)) < tol, `${method} ${n}->${out} j=${j}: ${r[j]}`);
      }
    }
  }
});

test('resize keeps a block pattern: nearest exactly, bilinear inside the blocks', async () => {
  // 32x32 checkerboard of 8x8 blocks, values 0/100; model size 16x16 -> 4x4 blocks.
  const px = new Float32Array(32 * 32);
  for (let r = 0; r < 32; r++) for (let c = 0; c < 32; c++) px[r * 32 + c] = ((r >> 3) + (c >> 3)) % 2 ? 100 : 0;
  const img = image(32, 32, px);
  const base = { size: { height: 16, width: 16 }, intensity: { kind: 'range', low: 0, high: 100 } };
  const near = await toTensor(img, parsePreprocessSpec({ ...base, resize: 'nearest' }));
  const lin = await toTensor(img, parsePreprocessSpec({ ...base, resize: 'bilinear' }));
  const lz = await toTensor(img, parsePreprocessSpec({ ...base, resize: 'lanczos3' }));
  for (let r = 0; r < 16; r++) {
    for (let c = 0; c < 16; c++) {
      const want = ((r >> 2) + (c >> 2)) % 2 ? 1 : 0;
      assert.equal(near[r * 16 + c], want);
      const interior = r % 4 !== 0 && r % 4 !== 3 && c % 4 !== 0 && c % 4 !== 3;
      if (interior) assert.ok(Math.abs(lin[r * 16 + c]! - want) < 1e-6, `bilinear ${r},${c}`);
      assert.ok(lz[r * 16 + c]! >= 0 && lz[r * 16 + c]! <= 1, 'lanczos3 overshoot is clamped');
    }
  }
});

test('the same image gives bit-identical tensors on two calls', async () => {
  const px = Float32Array.from({ length: 300 * 200 }, (_, i) => Math.sin(i * 0.37) * 1000 + (i % 97));
  const img = image(300, 200, px);
  for (const resize of ['nearest', 'bilinear', 'bicubic', 'lanczos3', 'area'] as const) {
    const s = parsePreprocessSpec({ size: { height: 128, width: 96 }, resize, intensity: { kind: 'zscore' }, channels: 3, normalize: { mean: [0.4], std: [0.2] } });
    const a = await toTensor(img, s);
    const b = await toTensor(img, s);
    assert.equal(a.length, 3 * 128 * 96);
    assert.deepEqual(Buffer.from(a.buffer), Buffer.from(b.buffer));
  }
  assert.deepEqual(Array.from(img.pixels.slice(0, 5)), Array.from(px.slice(0, 5)), 'input not modified');
});

test('the fused intensity+resize equals intensity then resize, bit for bit', async () => {
  const px = Float32Array.from({ length: 90 * 70 }, (_, i) => Math.cos(i * 0.11) * 300 + (i % 13) * 7);
  const img = image(90, 70, px, { window: { center: 20, width: 250 } });
  for (const intensity of [{ kind: 'minmax' }, { kind: 'zscore', clip: 2 }, { kind: 'dicom-window' }, { kind: 'range', low: -50, high: 100 }]) {
    const s = parsePreprocessSpec({ size: { height: 40, width: 33 }, resize: 'bilinear', intensity });
    const fused = await toTensor(img, s);
    const twoStep = resampleFloat32(applyIntensity(img, s.intensity), 90, 70, 40, 33, 'bilinear');
    assert.deepEqual(Buffer.from(fused.buffer), Buffer.from(twoStep.buffer), intensity.kind);
  }
});

test('spec validation errors are typed and name the field', () => {
  const bad = (input: unknown, re: RegExp) =>
    assert.throws(() => parsePreprocessSpec(input), (e: unknown) => e instanceof PreprocessError && e.code === 'INVALID_SPEC' && re.test(e.message) && !e.message.includes('\n'));
  bad({ size: { height: 0, width: 4 }, intensity: { kind: 'minmax' } }, /size\.height/);
  bad({ size: { height: 4, width: 4 }, intensity: { kind: 'gamma' } }, /intensity/);
  bad({ size: { height: 4, width: 4 }, intensity: { kind: 'window', center: 0, width: 0 } }, /intensity\.width/);
  bad({ size: { height: 4, width: 4 }, intensity: { kind: 'range', low: 5, high: 5 } }, /high > low/);
  bad({ size: { height: 4, width: 4 }, intensity: { kind: 'minmax' }, channels: 3, normalize: { mean: [0, 0], std: [1, 1] } }, /normalize/);
  bad({ size: { height: 4, width: 4 }, intensity: { kind: 'minmax' }, resize: 'box' }, /resize/);
  bad({ size: { height: 4, width: 4 }, intensity: { kind: 'minmax' }, extra: 1 }, /extra|Unrecognized/i);
  const ok = parsePreprocessSpec({ size: { height: 4, width: 4 }, intensity: { kind: 'minmax' } });
  assert.equal(ok.resize, 'bilinear');
  assert.equal(ok.channels, 1);
});

test('toTensor rejects an image whose pixel count disagrees with its size', async () => {
  const img = image(2, 2, [1, 2, 3]);
  await assert.rejects(toTensor(img, spec({ intensity: { kind: 'minmax' } })), (e: unknown) => e instanceof PreprocessError && e.code === 'INVALID_IMAGE');
});

function disk(rows: number, cols: number, cy: number, cx: number, rad: number): Mask {
  const d = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) if ((r + 0.5 - cy) ** 2 + (c + 0.5 - cx) ** 2 < rad * rad) d[r * cols + c] = 1;
  return createMask(rows, cols, d);
}

test('mask round trip: sizes, labels stay binary, and the geometry matches the image path', async () => {
  const rows = 300;
  const cols = 420;
  const m = disk(rows, cols, 140, 250, 60);
  const s = parsePreprocessSpec({ size: { height: 128, width: 160 }, intensity: { kind: 'range', low: 0, high: 1 } });
  const target = await maskToModel(m, s);
  assert.equal(target.rows, 128);
  assert.equal(target.cols, 160);
  assert.ok(target.data.every((v) => v === 0 || v === 1));
  // The image of the same disk, preprocessed and thresholded, agrees with the resized mask.
  const img = image(rows, cols, m.data);
  const t = await toTensor(img, s);
  const fromImage = createMask(128, 160, Uint8Array.from(t, (v) => (v > 0.5 ? 1 : 0)));
  assert.ok(dice(fromImage, target) > 0.97, `image/mask alignment dice ${dice(fromImage, target)}`);
  // Back to the original grid through the probability path.
  const probs = Float32Array.from(target.data);
  const back = await probabilitiesToMask(probs, 128, 160, rows, cols, 0.5);
  assert.equal(back.rows, rows);
  assert.equal(back.cols, cols);
  assert.ok(dice(back, m) > 0.97, `round trip dice ${dice(back, m)}`);
  // No systematic shift: the centroid moves by less than half an original pixel.
  const centroid = (x: Mask) => {
    let sr = 0, sc = 0, n = 0;
    for (let r = 0; r < x.rows; r++) for (let c = 0; c < x.cols; c++) if (x.data[r * x.cols + c]) { sr += r; sc += c; n++; }
    return [sr / n, sc / n] as const;
  };
  const [r0, c0] = centroid(m);
  const [r1, c1] = centroid(back);
  assert.ok(Math.abs(r1 - r0) < 0.5 && Math.abs(c1 - c0) < 0.5, `centroid moved from ${r0},${c0} to ${r1},${c1}`);
});

test('probabilitiesToMask thresholds interpolated probabilities; resizeMask is nearest', async () => {
  // 1x2 model output [0, 1] to 1x4: bilinear at x = 0.5*j - 0.25 -> [0, 0.25, 0.75, 1].
  const m = await probabilitiesToMask(Float32Array.of(0, 1), 1, 2, 1, 4, 0.5);
  assert.deepEqual(Array.from(m.data), [0, 0, 1, 1]);
  const m2 = await probabilitiesToMask(Float32Array.of(0, 1), 1, 2, 1, 4, 0.2);
  assert.deepEqual(Array.from(m2.data), [0, 1, 1, 1]);
  await assert.rejects(probabilitiesToMask(new Float32Array(3), 2, 2, 4, 4, 0.5), PreprocessError);
  const small = createMask(2, 2, Uint8Array.of(1, 0, 0, 255));
  assert.deepEqual(Array.from(resizeMask(small, 4, 4).data), [1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1]);
  assert.deepEqual(Array.from(resizeMask(resizeMask(small, 4, 4), 2, 2).data), [1, 0, 0, 1]);
  assert.equal(resizeMask(small, 3, 5).data.length, 15);
});

test('at the model size every resize method is the identity: toTensor equals the intensity step bit for bit', async () => {
  const px = Float32Array.from({ length: 48 * 40 }, (_, i) => Math.sin(i * 0.21) * 500 + (i % 17) * 3);
  const img = image(48, 40, px, { window: { center: 10, width: 300 } });
  for (const resize of ['nearest', 'bilinear', 'bicubic', 'lanczos3', 'area'] as const) {
    for (const intensity of [{ kind: 'minmax' }, { kind: 'dicom-window' }, { kind: 'zscore', clip: 2 }]) {
      const s = parsePreprocessSpec({ size: { height: 48, width: 40 }, resize, intensity });
      assert.deepEqual(Buffer.from((await toTensor(img, s)).buffer), Buffer.from(applyIntensity(img, s.intensity).buffer), `${resize} ${intensity.kind}`);
    }
  }
  const copy = resampleFloat32(px, 48, 40, 48, 40, 'bicubic');
  assert.notEqual(copy, px, 'a new array, never the input');
  assert.deepEqual(copy, px);
  // The probability path at the model size thresholds the values themselves.
  const probs = Float32Array.from({ length: 6 }, (_, i) => i / 5);
  assert.deepEqual(Array.from((await probabilitiesToMask(probs, 2, 3, 2, 3, 0.5)).data), [0, 0, 0, 1, 1, 1]);
});

test('resampleRows streams exactly the rows resampleFloat32 returns', () => {
  const src = Float32Array.from({ length: 30 * 21 }, (_, i) => Math.cos(i * 0.37) * 200 + (i % 11));
  const pre = { scale: 1 / 300, offset: 0.4 };
  for (const method of ['nearest', 'bilinear', 'bicubic', 'lanczos3', 'area'] as const) {
    for (const [h, w] of [[30, 21], [7, 5], [64, 50], [30, 9], [12, 21]] as const) {
      for (const p of [undefined, pre]) {
        const whole = resampleFloat32(src, 30, 21, h, w, method, p);
        const streamed = new Float32Array(h * w);
        let next = 0;
        resampleRows(src, 30, 21, h, w, method, (y, row) => {
          assert.equal(y, next++, 'rows arrive in order');
          assert.equal(row.length, w);
          streamed.set(row, y * w);
        }, p);
        assert.equal(next, h);
        assert.deepEqual(Buffer.from(streamed.buffer), Buffer.from(whole.buffer), `${method} 30x21 -> ${h}x${w} ${p ? 'with' : 'without'} prologue`);
      }
    }
  }
});

test('bilinearAboveThresholdRuns equals thresholding resampleFloat32 for every kind of probability map', () => {
  const maps: Array<[string, number, number, (y: number, x: number) => number]> = [
    ['empty', 24, 20, () => 0.001],
    ['full', 24, 20, () => 0.999],
    ['blob', 24, 20, (y, x) => 1 / (1 + Math.exp(-(6 - Math.hypot(y - 9, x - 12)) * 2))],
    ['noise', 24, 20, (y, x) => (Math.sin(y * 12.9898 + x * 78.233) * 43758.5453) % 1 + 0.5],
    ['near threshold', 24, 20, (y, x) => 0.5 + ((y * 20 + x) % 7 - 3) * 1e-8],
    ['stripes', 24, 20, (_y, x) => (x % 5 === 0 ? 0.9 : 0)],
    ['specials', 24, 20, (y, x) => (y === 3 && x === 4 ? NaN : y === 10 && x === 2 ? Infinity : y === 15 && x === 15 ? -Infinity : 0.2)],
  ];
  for (const [name, h, w, f] of maps) {
    const probs = new Float32Array(h * w);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) probs[y * w + x] = f(y, x);
    for (const [oh, ow] of [[96, 80], [97, 61], [24, 53], [11, 20], [7, 9], [200, 3]] as const) {
      for (const t of [0.5, 0.2, 0.999, 1e-3]) {
        const want = Uint8Array.from(resampleFloat32(probs, h, w, oh, ow, 'bilinear'), (v) => (v > t ? 1 : 0));
        assert.deepEqual(aboveThresholdBytes(probs, h, w, oh, ow, t), want, `${name} ${h}x${w} -> ${oh}x${ow} at ${t}`);
        // The column-major runs made from its row intervals are those a scan of the bytes finds.
        const runs = rowRunsToRuns(bilinearAboveThresholdRuns(probs, h, w, oh, ow, t), oh, ow);
        const scanned = maskToRuns(createMask(oh, ow, want));
        assert.deepEqual([...runs.starts.subarray(0, runs.count)], [...scanned.starts.subarray(0, scanned.count)], `run starts: ${name} -> ${oh}x${ow} at ${t}`);
      }
    }
  }
  assert.throws(() => bilinearAboveThresholdRuns(new Float32Array(4), 2, 2, 4, 4, 0), RangeError);
});
