import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attr, type Graph, type Value } from '../builder.ts';
import { distinctValues, gradCheck } from './gradcheck.ts';

const pool2 = (g: Graph, [x]: Value[]) => g.op1('MaxPool', [x!], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) });

test('MaxPool 2x2: gradient goes to the argmax (indices + scatter, and equality mask), dynamic batch', async () => {
  for (const maxPoolGrad of ['indices', 'mask'] as const) {
    const r = await gradCheck({
      // Distinct values 0.05 apart keep every window's maximum unique under the +-eps perturbation.
      inputs: [{ name: 'x', dims: [2, 3, 4, 6], shape: ['N', 3, 4, 6], data: distinctValues(144, 0.05, 3) }],
      build: pool2,
      dtype: 'float64',
      gradOptions: { maxPoolGrad },
    });
    assert.equal(r.checked, 144);
    assert.deepEqual(r.failures, [], `${maxPoolGrad}: worst ${JSON.stringify(r.worst)}`);
  }
});

test('MaxPool 3x3 stride 2 with padding (overlapping windows) uses the exact indices path', async () => {
  const r = await gradCheck({
    inputs: [{ name: 'x', dims: [1, 2, 5, 5], data: distinctValues(50, 0.05, 4) }],
    build: (g, [x]) => g.op1('MaxPool', [x!], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) }),
    dtype: 'float64',
    gradOptions: { maxPoolGrad: 'mask' },
  });
  assert.deepEqual(r.failures, [], JSON.stringify(r.worst));
});

test('MaxPool after ReLU (ties at zero get no gradient through ReLU either way)', async () => {
  for (const maxPoolGrad of ['indices', 'mask'] as const) {
    const r = await gradCheck({
      inputs: [{ name: 'x', dims: [1, 2, 4, 4], data: distinctValues(32, 0.05, 5, -0.4) }],
      build: (g, [x]) => pool2(g, [g.relu(x!)]),
      dtype: 'float64',
      gradOptions: { maxPoolGrad },
    });
    assert.deepEqual(r.failures, [], `${maxPoolGrad}: ${JSON.stringify(r.worst)}`);
  }
});
