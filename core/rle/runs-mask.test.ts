/**
 * A mask made from its runs (how engine workers hand masks to the main thread) is the same mask as
 * its pixels in every respect a consumer can see: each RLE format's encoding, the painted `data`,
 * deep equality; and the runs themselves come back from maskToRuns without a scan.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMask } from '../mask.ts';
import { encodeMask, RLE_FORMATS } from './index.ts';
import { maskFromRuns, maskToRuns } from './runs.ts';

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
