import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createMask, type Mask } from '../mask.ts';
import { averageWithUnflipped, hflipCHW, logitsAboveThreshold, maskStats, outputToMasks, probabilitiesToMasks, type OutputOptions } from './postprocess.ts';
import { toProbabilitiesInPlace } from './activation.ts';
import { filterComponents } from './components.ts';
import { encodeMask } from '../rle/index.ts';
import { maskFromRuns, maskToRuns } from '../rle/runs.ts';

const sigmoidInPlace = (x: Float32Array): Float32Array => toProbabilitiesInPlace(x, 'logits');

test('sigmoid maps logits to probabilities', () => {
  const x = sigmoidInPlace(new Float32Array([0, 100, -100, Math.log(3)]));
  assert.equal(x[0], 0.5);
  assert.ok(x[1]! > 0.999 && x[2]! < 0.001);
  assert.ok(Math.abs(x[3]! - 0.75) < 1e-6);
});

test('hflip mirrors each row of every channel; un-flipped averaging restores alignment', () => {
  // 2 channels, 2 rows, 3 columns
  const t = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.deepEqual(Array.from(hflipCHW(t, 2, 2, 3)), [3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]);
  // A model that is exactly flip-equivariant: its output on the flipped image is the flipped output.
  const probs = new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
  const flippedOut = hflipCHW(probs, 1, 2, 3);
  const avg = averageWithUnflipped(probs.slice(), flippedOut, 1, 2, 3);
  for (let i = 0; i < 6; i++) assert.ok(Math.abs(avg[i]! - probs[i]!) < 1e-7);
  // And a non-equivariant one averages position by position.
  const a = averageWithUnflipped(new Float32Array([1, 0, 0]), new Float32Array([1, 0, 0]), 1, 1, 3);
  assert.deepEqual(Array.from(a), [0.5, 0, 0.5]);
});

test('maskStats: area and [x, y, width, height], null when empty', () => {
  const m = createMask(4, 5);
  assert.deepEqual(maskStats(m), { area: 0, bbox: null });
  m.data[1 * 5 + 2] = 1;
  m.data[3 * 5 + 4] = 1;
  assert.deepEqual(maskStats(m), { area: 2, bbox: [2, 1, 3, 3] });
});

/** The definition, pixel by pixel, without the zero-word skipping. */
function naiveStats(m: Mask) {
  let area = 0;
  let [x0, y0, x1, y1] = [Infinity, Infinity, -1, -1];
  for (let y = 0; y < m.rows; y++) {
    for (let x = 0; x < m.cols; x++) {
      if (m.data[y * m.cols + x] === 0) continue;
      area++;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
    }
  }
  return { area, bbox: area === 0 ? null : [x0, y0, x1 - x0 + 1, y1 - y0 + 1] };
}

test('maskStats equals the pixel-by-pixel definition for any size, density, value and buffer offset', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 23 }),
      fc.integer({ min: 1, max: 23 }),
      fc.integer({ min: 0, max: 3 }),
      fc.array(fc.tuple(fc.nat(), fc.constantFrom(1, 2, 128, 255)), { maxLength: 12 }),
      (rows, cols, offset, hits) => {
        // A view at `offset` into a larger buffer: unaligned views take the byte-by-byte path.
        const data = new Uint8Array(rows * cols + offset + 5).subarray(offset, offset + rows * cols);
        for (const [i, v] of hits) data[i % data.length] = v;
        const m = createMask(rows, cols, data);
        assert.deepEqual(maskStats(m), naiveStats(m));
      },
    ),
    { numRuns: 400 },
  );
  // Dense masks (most words nonzero), any byte values, aligned and not.
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 0, max: 3 }),
      fc.uint8Array({ minLength: 1600, maxLength: 1600 }),
      fc.constantFrom(0.3, 0.7, 0.97, 1),
      (rows, cols, offset, bytes, density) => {
        const data = new Uint8Array(rows * cols + offset).subarray(offset);
        for (let i = 0; i < data.length; i++) data[i] = bytes[i]! < 256 * density ? bytes[(i * 7) % 1600]! | 1 : 0;
        const m = createMask(rows, cols, data);
        assert.deepEqual(maskStats(m), naiveStats(m));
        // The same mask made from its runs: stats from the runs, no pixels painted for them.
        const fromRuns = maskFromRuns(maskToRuns(m), rows, cols);
        assert.deepEqual(maskStats(fromRuns), naiveStats(m));
      },
    ),
    { numRuns: 300 },
  );
});

test('component rules on a mask made from runs give a new mask and leave the given one, and its runs, as they were', () => {
  // Two blobs: 3 px in column 0, 6 px in columns 3..4 (each column-major run stays in its column).
  const data = new Uint8Array(6 * 6);
  for (const i of [0, 6, 12, 3 + 6, 3 + 12, 3 + 18, 4 + 6, 4 + 12, 4 + 18]) data[i] = 1;
  const plain = createMask(6, 6, data);
  const lazy = maskFromRuns(maskToRuns(plain), 6, 6);
  const before = encodeMask(lazy, 'kaggle');
  const kept = filterComponents(lazy, { keepLargest: true });
  assert.notEqual(kept, lazy);
  assert.equal(maskStats(kept).area, 6);
  assert.deepEqual(maskStats(lazy), naiveStats(plain), 'the given mask still has both blobs');
  assert.equal(encodeMask(lazy, 'kaggle'), before);
  assert.deepEqual(lazy.data, plain.data);
  assert.equal(filterComponents(lazy, {}), lazy, 'no rule in force: the same mask');
});

test('probabilitiesToMasks resizes to the original grid, labels each channel and gates small masks', async () => {
  // 2 channels at 4x4: channel 0 has a 2x2 blob (-> 4x4 = 16 px at 8x8), channel 1 one pixel (-> ~4 px).
  const probs = new Float32Array(32);
  for (const [r, c] of [[1, 1], [1, 2], [2, 1], [2, 2]]) probs[r! * 4 + c!] = 1;
  probs[16 + 0] = 1;
  const masks = await probabilitiesToMasks(probs, { channels: 2, height: 4, width: 4, rows: 8, cols: 8, labels: ['a', 'b'], threshold: 0.5, minArea: 10 });
  assert.deepEqual(masks.map((m) => m.label), ['a', 'b']);
  const [a, b] = masks;
  assert.equal(a!.mask.rows, 8);
  assert.equal(a!.mask.cols, 8);
  assert.equal(a!.empty, false);
  assert.ok(a!.area >= 10, `blob survives the gate (area ${a!.area})`);
  assert.deepEqual(maskStats(a!.mask), { area: a!.area, bbox: a!.bbox });
  // Channel b is positive but below minArea: reported empty, mask zeroed.
  assert.equal(b!.empty, true);
  assert.equal(b!.area, 0);
  assert.equal(b!.bbox, null);
  assert.ok(b!.mask.data.every((v) => v === 0));
  assert.equal(b!.minArea, 10);
  const ungated = await probabilitiesToMasks(probs, { channels: 2, height: 4, width: 4, rows: 8, cols: 8, labels: ['a', 'b'], threshold: 0.5, minArea: 0 });
  assert.ok(ungated[1]!.area > 0 && ungated[1]!.area < 10);
});

test('logitsAboveThreshold decides exactly as thresholding the float32 sigmoid, right at the boundary too', () => {
  for (const t of [0.5, 0.1, 0.9, 0.3, 1e-3, 0.999, 1e-4, 2e-6, 1 - 1e-6, 1e-9]) {
    const x0 = Math.log(t / (1 - t));
    const values: number[] = [NaN, Infinity, -Infinity, 0, 80, -80, x0];
    // Dense around logit(t), across and beyond the band, in float32 steps and in wider ones.
    let up = Math.fround(x0);
    let down = Math.fround(x0);
    for (let i = 0; i < 300; i++) {
      up = nextFloat32(up, 1);
      down = nextFloat32(down, -1);
      values.push(up, down);
    }
    for (let i = -200; i <= 200; i++) values.push(x0 + i * 1e-6, x0 + i * 1e-4, x0 + i * 0.01);
    const logits = Float32Array.from(values);
    const expected = Uint8Array.from(sigmoidInPlace(logits.slice()), (p) => (p > t ? 1 : 0));
    assert.deepEqual(logitsAboveThreshold(logits, t), expected, `threshold ${t}`);
  }
});

/** The adjacent float32 in direction `dir`. */
function nextFloat32(x: number, dir: 1 | -1): number {
  const f = new Float32Array([x]);
  const i = new Int32Array(f.buffer);
  if (x === 0) i[0] = dir > 0 ? 1 : -2147483647;
  else i[0]! += (x > 0) === (dir > 0) ? 1 : -1;
  return f[0]!;
}

test('outputToMasks: the same masks as sigmoid + probabilitiesToMasks, with and without the logit shortcut', async () => {
  const rnd = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 6);
  for (const [h, w, rows, cols] of [[8, 8, 8, 8], [8, 8, 13, 11]] as const) {
    for (const threshold of [0.5, 0.2]) {
      const o: OutputOptions = { activation: 'logits', channels: 2, height: h, width: w, rows, cols, labels: ['a', 'b'], threshold, minArea: 3 };
      const logits = rnd(2 * h * w, h + rows + threshold);
      const reference = await probabilitiesToMasks(sigmoidInPlace(logits.slice()), o);
      assert.deepEqual(await outputToMasks(logits.slice(), undefined, o), reference, `${h}x${w} -> ${rows}x${cols} at ${threshold}`);
      // TTA always takes the sigmoid path: the average of the two probability maps.
      const flipped = rnd(2 * h * w, 99);
      const avg = averageWithUnflipped(sigmoidInPlace(logits.slice()), sigmoidInPlace(flipped.slice()), 2, h, w);
      assert.deepEqual(await outputToMasks(logits.slice(), flipped.slice(), o), await probabilitiesToMasks(avg, o));
      // A sigmoid-output model is thresholded as it is.
      const probs = sigmoidInPlace(logits.slice());
      assert.deepEqual(await outputToMasks(probs.slice(), undefined, { ...o, activation: 'sigmoid' }), await probabilitiesToMasks(probs, o));
    }
  }
});
