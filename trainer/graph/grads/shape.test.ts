import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attr, type Graph, type Value } from '../builder.ts';
import { gradCheck, type GradCheckInput } from './gradcheck.ts';

async function expectGradOk(name: string, inputs: GradCheckInput[], build: (g: Graph, v: Value[]) => Value) {
  const r = await gradCheck({ inputs, build, dtype: 'float64' });
  assert.ok(r.checked > 0, `${name}: nothing checked`);
  assert.deepEqual(r.failures, [], `${name}: worst ${JSON.stringify(r.worst)}`);
}

test('ReduceSum / ReduceMean over some or all axes, keepdims on and off, with a dynamic batch dim', async () => {
  const x = (): GradCheckInput[] => [{ name: 'x', dims: [2, 3, 2, 2], shape: ['N', 3, 2, 2] }];
  await expectGradOk('ReduceSum keep', x(), (g, [v]) => g.mul(g.reduceSum(v!, [0, 2, 3], true), g.reduceSum(v!, [1], true)));
  await expectGradOk('ReduceSum drop', x(), (g, [v]) => g.reduceSum(v!, [0, 2], false));
  await expectGradOk('ReduceSum all', x(), (g, [v]) => g.exp(g.reduceSum(g.mul(v!, g.scalar(0.1, 'float64')), undefined, false)));
  await expectGradOk('ReduceMean dynamic N', x(), (g, [v]) => g.mul(g.reduceMean(v!, [0, 2, 3], false), g.reduceMean(v!, [0, 2, 3], false)));
  await expectGradOk('ReduceSumSquare', x(), (g, [v]) => g.mul(g.reduceSumSquare(v!, [0, 2, 3], false), g.reduceSum(v!, [0, 2, 3], false)));
  await expectGradOk('ReduceMean keep', x(), (g, [v]) => g.sigmoid(g.reduceMean(v!, [3], true)));
});

test('Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand', async () => {
  const x = (): GradCheckInput[] => [{ name: 'x', dims: [2, 3, 4] }];
  await expectGradOk('Reshape', x(), (g, [v]) => g.reshape(v!, [6, 4]));
  await expectGradOk('Reshape -1', x(), (g, [v]) => g.reshape(v!, [-1]));
  await expectGradOk('Flatten', x(), (g, [v]) => g.op1('Flatten', [v!], { axis: attr.int(2) }));
  await expectGradOk('Transpose', x(), (g, [v]) => g.transpose(v!, [2, 0, 1]));
  await expectGradOk('Unsqueeze+Squeeze', x(), (g, [v]) => g.op1('Squeeze', [g.sigmoid(g.op1('Unsqueeze', [v!, g.int64s([1])])), g.int64s([1])]));
  await expectGradOk('Expand', [{ name: 'x', dims: [3, 1] }], (g, [v]) => g.op1('Expand', [v!, g.int64s([2, 3, 4])]));
});

test('Concat, Split and Slice', async () => {
  await expectGradOk('Concat', [{ name: 'a', dims: [2, 3, 2] }, { name: 'b', dims: [2, 1, 2] }], (g, [a, b]) => g.concat([a!, g.exp(b!), a!], 1));
  await expectGradOk('Split', [{ name: 'x', dims: [2, 5] }], (g, [v]) => {
    const [p, q] = g.op('Split', [v!, g.int64s([2, 3])], { axis: attr.int(1) }, { outputs: 2 });
    return g.concat([g.sigmoid(q!), p!], 1);
  });
  await expectGradOk('Split one part unused', [{ name: 'x', dims: [2, 5] }], (g, [v]) => g.op('Split', [v!, g.int64s([2, 3])], { axis: attr.int(1) }, { outputs: 2 })[1]!);
  await expectGradOk('Slice', [{ name: 'x', dims: [3, 6] }], (g, [v]) => g.slice(v!, [1, 2], [3, -1], [0, 1]));
});
