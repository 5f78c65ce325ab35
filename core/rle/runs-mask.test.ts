/**
 * A mask made from its runs (how engine workers hand masks to the main thread) is the same mask as
 * its pixels in every respect a consumer can see: each RLE format's encoding, the painted `data`,
 * deep equality; and the runs themselves come back from maskToRuns without a scan.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMask } from '../mask.ts';
import { encodeMask, RLE_FORMATS } from './index.ts';
import { maskFromRuns, maskToRuns, RowRuns, rowRunsToRuns } from './runs.ts';

function phantom(rows: number, cols: number, seed: number): Uint8Array {
  const data = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const d = Math.hypot(r - rows * 0.4, c - cols * 0.6);
      data[r * cols + c] = d < rows * 0.2 || (r * 31 + c * 17 + seed) % 97 === 0 || (c === cols - 1 && r > rows / 2) ? 1 : 0;
    }
  }
  return data;
}

test('maskFromRuns(maskToRuns(m)) encodes, paints and compares as m (sparse, dense, empty, full, one row, one column)', () => {
  const cases = [
    createMask(64, 48, phantom(64, 48, 1)),
    createMask(37, 91, phantom(37, 91, 2)),
    createMask(40, 40, new Uint8Array(1600).fill(1)),
    createMask(40, 40),
    createMask(1, 50, phantom(1, 50, 3)),
    createMask(50, 1, phantom(50, 1, 4)),
  ];
  for (const m of cases) {
    const runs = maskToRuns(m);
    const copy = { starts: runs.starts.slice(0, runs.count), lengths: runs.lengths.slice(0, runs.count), count: runs.count };
    const lazy = maskFromRuns(copy, m.rows, m.cols);
    for (const f of RLE_FORMATS) assert.deepEqual(encodeMask(lazy, f), encodeMask(m, f), `${f} ${m.rows}x${m.cols}`);
    assert.equal(maskToRuns(lazy), copy, 'its runs, not a rescan');
    assert.deepEqual(lazy.data, m.data, `pixels ${m.rows}x${m.cols}`);
    assert.equal(lazy.data, lazy.data, 'painted once');
    assert.deepEqual(lazy, m);
  }
});

test('rowRunsToRuns: row intervals found in row-major order give maskToRuns\' runs (random densities, empty rows, edges, 1-row and 1-column masks)', () => {
  let seed = 12345;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const sizes: [number, number][] = [[1, 1], [1, 17], [23, 1], [8, 8], [31, 45], [64, 64], [100, 7]];
  for (let iter = 0; iter < 300; iter++) {
    const [rows, cols] = sizes[iter % sizes.length]!;
    const density = [0, 0.02, 0.3, 0.7, 1][iter % 5]!;
    const blocky = rnd() < 0.5;
    const data = new Uint8Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = blocky ? (Math.floor(i / cols / 3) + Math.floor((i % cols) / 4)) % 3 === 0 && rnd() < 0.9 ? 1 : 0 : rnd() < density ? 1 : 0;
    if (rnd() < 0.3) data.fill(0, 0, Math.floor(data.length * rnd())); // leading empty rows
    const m = createMask(rows, cols, data);
    const rr = new RowRuns();
    for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) if (data[y * cols + x]) rr.add(y, x);
    const got = rowRunsToRuns(rr, rows, cols);
    const want = maskToRuns(m);
    const what = `#${iter} ${rows}x${cols}`;
    assert.equal(got.count, want.count, what);
    assert.deepEqual(Array.from(got.starts.subarray(0, got.count)), Array.from(want.starts.subarray(0, want.count)), what);
    assert.deepEqual(Array.from(got.lengths.subarray(0, got.count)), Array.from(want.lengths.subarray(0, want.count)), what);
  }
});
