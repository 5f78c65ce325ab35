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

/** LGG-like: `patients` folders of 5-30 slices each, tumour in a run of middle slices of some patients. */
function lgg(patients: number, seed = 1) {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const out: Array<{ id: string; hasMask: boolean; group: string }> = [];
  for (let p = 0; p < patients; p++) {
    const group = `TCGA_${String(p).padStart(3, '0')}`;
    const slices = 5 + Math.floor(rnd() * 26);
    const tumour = rnd() < 0.7;
    for (let k = 1; k <= slices; k++) out.push({ id: `${group}/${group}_${k}`, hasMask: tumour && k > slices / 3 && k < (2 * slices) / 3, group });
  }
  return out;
}

test('grouped samples (patients) never straddle folds; sizes and positives stay balanced', () => {
  const s = lgg(40);
  const folds = 5;
  const f = assignFolds(s, folds, 42);
  const foldOfGroup = new Map<string, number>();
  s.forEach((x, i) => {
    const seen = foldOfGroup.get(x.group);
    assert.ok(seen === undefined || seen === f[i], `patient ${x.group} is split across folds ${seen} and ${f[i]}`);
    foldOfGroup.set(x.group, f[i]!);
  });
  const maxGroup = Math.max(...[...new Set(s.map((x) => x.group))].map((g) => s.filter((x) => x.group === g).length));
  const pos = s.filter((x) => x.hasMask).length;
  for (let k = 0; k < folds; k++) {
    const members = s.filter((_, i) => f[i] === k);
    assert.ok(Math.abs(members.length - s.length / folds) <= maxGroup, `fold ${k} has ${members.length} of ${s.length} slices (largest patient ${maxGroup})`);
    const p = members.filter((x) => x.hasMask).length;
    assert.ok(Math.abs(p - pos / folds) <= maxGroup / 2, `fold ${k} has ${p} positives, expected ~${(pos / folds).toFixed(1)}`);
  }
  // Every split: no patient in both training and validation.
  for (let k = 0; k < folds; k++) {
    const { train, val } = splitFold(s, folds, k, 42);
    const trainPatients = new Set(train.map((x) => x.group));
    for (const v of val) assert.ok(!trainPatients.has(v.group), `fold ${k}: ${v.group} in both`);
  }
  // Deterministic and order independent, like the ungrouped split.
  assert.deepEqual(f, assignFolds(s.slice().reverse(), folds, 42).reverse());
});

test('ungrouped samples keep the ungrouped split; too few patients is a typed error', () => {
  const s = samples(50, 10);
  assert.deepEqual(assignFolds(s.map((x) => ({ ...x, group: x.id })), 5, 7), assignFolds(s, 5, 7), 'singleton groups change nothing');
  assert.throws(() => assignFolds(lgg(3), 5, 1), (e: unknown) => e instanceof FoldError && /3 patients/.test(e.message));
});
