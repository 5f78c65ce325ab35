import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attr, type Graph, type Value } from '../builder.ts';
import { batchNormTrain } from '../../model/unet.ts';
import { awayFromZero, gradCheck } from './gradcheck.ts';

const positive = (n: number, seed: number) => awayFromZero(n, 0.5, seed).map(Math.abs);

test('BatchNormalization (inference form): gradients for x, scale, bias, mean and var', async () => {
  const r = await gradCheck({
    inputs: [
      { name: 'x', dims: [2, 3, 2, 2] },
      { name: 'scale', dims: [3] },
      { name: 'bias', dims: [3] },
      { name: 'mean', dims: [3] },
      { name: 'var', dims: [3], data: positive(3, 6) },
    ],
    build: (g: Graph, [x, s, b, m, v]: Value[]) => g.op1('BatchNormalization', [x!, s!, b!, m!, v!], { epsilon: attr.float(1e-3) }),
    dtype: 'float64',
  });
  assert.equal(r.checked, 24 + 12);
  assert.deepEqual(r.failures, [], JSON.stringify(r.worst));
});

test('training-form BatchNorm (batch statistics from ReduceMean, dynamic batch): gradients for x, scale, bias', async () => {
  const r = await gradCheck({
    inputs: [
      { name: 'x', dims: [3, 2, 2, 3], shape: ['N', 2, 2, 3] },
      { name: 'scale', dims: [2], data: positive(2, 1) },
      { name: 'bias', dims: [2] },
    ],
    build: (g: Graph, [x, s, b]: Value[]) => batchNormTrain(g, x!, s!, b!).normalized,
    dtype: 'float64',
  });
  assert.equal(r.checked, 36 + 4);
  assert.deepEqual(r.failures, [], JSON.stringify(r.worst));
});
