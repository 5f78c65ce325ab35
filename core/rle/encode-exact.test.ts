/**
 * The streamed encoders (forEachRun, encodeCocoString writing bytes straight from the runs) against
 * the definitions: runs from a pixel-by-pixel column-major scan, and the coco string as
 * cocoCountsToString of the counts built from those runs. Random sizes, densities and shapes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32 } from '../../synth/rng.ts';
import { createMask, type Mask } from '../mask.ts';
import { cocoCountsToString, encodeCocoCounts, encodeCocoString } from './coco.ts';
import { encodeKaggle } from './kaggle.ts';
import { maskToRuns } from './runs.ts';

function naiveCounts(mask: Mask): number[] {
  const { rows, cols, data } = mask;
  const counts: number[] = [];
  let current = 0; // 0 = background run, 1 = foreground run
  let len = 0;
  for (let c = 0; c < cols; c++) {
    for (let r = 0; r < rows; r++) {
      const v = data[r * cols + c] !== 0 ? 1 : 0;
      if (v === current) len++;
      else {
        counts.push(len);
        current = v;
        len = 1;
      }
    }
  }
  counts.push(len);
  return counts;
}

function randomMask(rng: () => number): Mask {
  const rows = Math.floor(rng() * 70);
  const cols = Math.floor(rng() * 70);
  const kind = rng();
  const data = new Uint8Array(rows * cols);
  const cx = rng() * cols;
  const cy = rng() * rows;
  const rad = rng() * 30;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      if (kind < 0.3) data[i] = rng() < 0.5 ? 1 + Math.floor(rng() * 255) : 0;
      else if (kind < 0.6) data[i] = Math.hypot(r - cy, c - cx) < rad ? 1 : 0;
      else if (kind < 0.7) data[i] = 1;
      else if (kind < 0.8) data[i] = 0;
      else data[i] = rng() < 0.03 ? 255 : 0;
    }
  }
  return createMask(rows, cols, data);
}

test('property: streamed runs and coco strings equal the pixel-by-pixel definitions', () => {
  const rng = mulberry32(4242);
  for (let iter = 0; iter < 600; iter++) {
    const mask = randomMask(rng);
    const counts = naiveCounts(mask);
    const n = mask.rows * mask.cols;
    // pycocotools writes the trailing count even when it is 0 only if nothing came before.
    const expectedCounts = n === 0 ? [0] : counts[counts.length - 1] === 0 && counts.length > 1 ? counts.slice(0, -1) : counts;
    const what = `#${iter} ${mask.rows}x${mask.cols}`;
    assert.deepEqual(encodeCocoCounts(mask), expectedCounts, what);
    assert.equal(encodeCocoString(mask), cocoCountsToString(expectedCounts), what);
    const runs = maskToRuns(mask);
    let pos = 0;
    const pairs: string[] = [];
    for (let k = 0; k < expectedCounts.length; k++) {
      if (k % 2 === 1) pairs.push(`${pos + 1} ${expectedCounts[k]}`);
      pos += expectedCounts[k]!;
    }
    assert.equal(runs.count, pairs.length, what);
    assert.equal(encodeKaggle(mask), pairs.join(' '), what);
  }
});

test('a 1024x1024 mask with a lesion and scattered noise: the coco string equals the counts coded', () => {
  const rng = mulberry32(1);
  const data = new Uint8Array(1024 * 1024);
  for (let i = 0; i < data.length; i++) {
    const r = Math.floor(i / 1024);
    const c = i % 1024;
    data[i] = Math.hypot(r - 400, c - 300) < 120 || rng() < 0.01 ? 1 : 0;
  }
  const mask = createMask(1024, 1024, data);
  assert.equal(encodeCocoString(mask), cocoCountsToString(naiveCounts(mask)));
});
