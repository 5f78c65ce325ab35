import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignFolds, splitFold, FoldError } from './folds.ts';

function samples(n: number, positives: number) {
  return Array.from({ length: n }, (_, i) => ({ id: `img-${String(i).padStart(4, '0')}`, hasMask: i % Math.round(n / positives) === 0 }));
}

test('every fold keeps the positive share within one image', () => {
  const s = samples(103, 26);
  const pos = s.filter((x) => x.hasMask).length;
  const f = assignFolds(s, 5, 42);
  for (let k = 0; k < 5; k++) {
    const members = s.filter((_, i) => f[i] === k);
    const p = members.filter((x) => x.hasMask).length;
    assert.ok(Math.abs(p - pos / 5) <= 1, `fold ${k} has ${p} positives, expected ~${pos / 5}`);
    assert.ok(Math.abs(members.length - s.length / 5) <= 1, `fold ${k} has ${members.length} images`);
  }
});

test('folds partition the set and are deterministic and order independent', () => {
  const s = samples(50, 10);
  const a = assignFolds(s, 5, 7);
  const b = assignFolds(s.slice().reverse(), 5, 7).reverse();
  assert.deepEqual(a, b);
  const c = assignFolds(s, 5, 8);
  assert.notDeepEqual(a, c, 'another seed gives another split');
  const seen = new Set<string>();
  for (let k = 0; k < 5; k++) {
    const { train, val } = splitFold(s, 5, k, 7);
    assert.equal(train.length + val.length, s.length);
    for (const v of val) {
      assert.ok(!seen.has(v.id), 'each image validates in exactly one fold');
      seen.add(v.id);
      assert.ok(!train.includes(v));
    }
  }
  assert.equal(seen.size, s.length);
});

test('bad fold arguments are typed errors', () => {
  assert.throws(() => assignFolds(samples(3, 1), 5, 1), FoldError);
  assert.throws(() => splitFold(samples(10, 2), 5, 5, 1), FoldError);
  assert.throws(() => assignFolds(samples(10, 2), 1, 1), FoldError);
});
