import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attr, Graph, GraphError, makeTensor } from './builder.ts';

test('shape inference: conv/pool/convtranspose sizes, symbolic batch, reshape -1, concat, slice with negative step', () => {
  const g = new Graph('s');
  const x = g.input('x', 'float32', ['N', 3, 17, 16]);
  const w = g.input('w', 'float32', [8, 3, 3, 3]);
  const y = g.op1('Conv', [x, w], { pads: attr.ints([1, 1, 1, 1]), strides: attr.ints([2, 2]) });
  assert.deepEqual(y.shape, ['N', 8, 9, 8]);
  const p = g.op('MaxPool', [y], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) }, { outputs: 2 });
  assert.deepEqual(p[0]!.shape, ['N', 8, 4, 4]);
  assert.equal(p[1]!.dtype, 'int64');
  const wt = g.input('wt', 'float32', [8, 4, 2, 2]);
  assert.deepEqual(g.op1('ConvTranspose', [p[0]!, wt], { strides: attr.ints([2, 2]) }).shape, ['N', 4, 8, 8]);
  assert.deepEqual(g.reshape(y, [0, 8, -1]).shape, ['N', 8, 72]);
  assert.deepEqual(g.reshape(y, [-1]).shape, ['N*576']);
  assert.deepEqual(g.concat([y, y], 1).shape, ['N', 16, 9, 8]);
  assert.deepEqual(g.slice(y, [-1], [-100], [3], [-2]).shape, ['N', 8, 9, 4]);
  assert.deepEqual(g.reduceSum(y, [0, 2, 3], false).shape, [8]);
  assert.deepEqual(g.matmul(g.input('a', 'float32', [5, 1, 2, 3]), g.input('b', 'float32', [4, 3, 7])).shape, [5, 4, 2, 7]);
});

test('broadcasting mismatches, unknown ops and duplicate names are reported', () => {
  const g = new Graph('e');
  const a = g.input('a', 'float32', [2, 3]);
  const b = g.input('b', 'float32', [4, 3]);
  assert.throws(() => g.add(a, b), GraphError);
  assert.throws(() => g.op1('NoSuchOp', [a]), /no shape inference for op NoSuchOp/);
  assert.throws(() => g.input('a', 'float32', [1]), /already used/);
  const c1 = g.constant(makeTensor('int64', [2], [1, 2]));
  const c2 = g.constant(makeTensor('int64', [2], [1, 2]));
  assert.equal(c1.name, c2.name, 'small identical constants are shared');
});

test('output renaming rewires consumers', () => {
  const g = new Graph('r');
  const a = g.input('a', 'float32', [2]);
  const r = g.relu(a);
  const e = g.exp(r);
  const named = g.output(r, 'activations');
  assert.equal(named.name, 'activations');
  assert.deepEqual(g.nodes.find((n) => n.op === 'Exp')!.inputs, ['activations']);
  assert.ok(g.values.has(e.name));
  assert.deepEqual(g.outputs, ['activations']);
});
