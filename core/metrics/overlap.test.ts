import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMask, type Mask } from '../mask.ts';
import { dice, iou, meanDice, overlap } from './index.ts';

function maskOf(...rowStrings: string[]): Mask {
  return createMask(rowStrings.length, rowStrings[0]!.length, Uint8Array.from(rowStrings.join(''), (c) => (c === '1' ? 1 : 0)));
}

test('hand-computed dice and iou', () => {
  // A has 4 pixels, B has 3, they share 2: dice = 4/7, iou = 2/5.
  const a = maskOf('1100', '1100');
  const b = maskOf('0110', '0100');
  assert.deepEqual(overlap(a, b), { intersection: 2, predicted: 4, reference: 3 });
  assert.equal(dice(a, b), 4 / 7);
  assert.equal(iou(a, b), 2 / 5);
  assert.equal(dice(b, a), 4 / 7); // symmetric
});

test('identical, disjoint and empty masks', () => {
  const a = maskOf('101', '010');
  const c = maskOf('010', '101');
  const e = maskOf('000', '000');
  assert.equal(dice(a, a), 1);
  assert.equal(iou(a, a), 1);
  assert.equal(dice(a, c), 0);
  assert.equal(iou(a, c), 0);
  assert.equal(dice(e, e), 1, 'both empty: Kaggle convention');
  assert.equal(iou(e, e), 1);
  assert.equal(dice(a, e), 0);
  assert.equal(dice(e, a), 0);
});

test('nonzero values other than 1 count as foreground', () => {
  const a = createMask(1, 3, Uint8Array.of(255, 0, 7));
  const b = createMask(1, 3, Uint8Array.of(1, 1, 0));
  assert.equal(dice(a, b), 2 / 4);
});

test('size mismatch is an error', () => {
  assert.throws(() => dice(maskOf('11'), maskOf('1', '1')), /differ in size: 1x2 vs 2x1/);
  assert.throws(() => iou(maskOf('11'), maskOf('111')), RangeError);
});

test('meanDice averages per-image scores', () => {
  const a = maskOf('1100', '1100');
  const b = maskOf('0110', '0100');
  const e = maskOf('0000', '0000');
  // (4/7 + 1 + 0) / 3
  assert.equal(meanDice([[a, b], [e, e], [a, e]]), (4 / 7 + 1 + 0) / 3);
  assert.throws(() => meanDice([]), /no mask pairs/);
});
