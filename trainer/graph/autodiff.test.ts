import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gradients } from './autodiff.ts';
import { Graph } from './builder.ts';
import type { Value } from './types.ts';

/** Ops appended by `gradients` (the backward graph only). */
function backward(build: (g: Graph) => { loss: Value; wrt: Value[] }) {
  const g = new Graph('ad');
  const { loss, wrt } = build(g);
  const from = g.nodes.length;
  const grads = gradients(g, loss, wrt);
  return { g, grads, ops: g.nodes.slice(from).map((n) => n.op) };
}

test('the walker sums a broadcast gradient down to each input shape (rules return the output shape)', () => {
  const { grads, ops } = backward((g) => {
    const a = g.input('a', 'float32', ['N', 3, 2, 2]);
    const b = g.input('b', 'float32', [1, 3, 1, 1]);
    const s = g.input('s', 'float32', []);
    return { loss: g.reduceSum(g.mul(g.add(a, b), s), undefined, false), wrt: [a, b, s] };
  });
  assert.deepEqual(grads.get('a')!.shape, ['N', 3, 2, 2]);
  assert.deepEqual(grads.get('b')!.shape, [1, 3, 1, 1]);
  assert.deepEqual(grads.get('s')!.shape, []);
  // b: one ReduceSum over [0, 2, 3]; s: one ReduceSum over all four axes and a Squeeze of them.
  assert.equal(ops.filter((o) => o === 'Squeeze').length, 1);
});

test('no unbroadcast nodes when a gradient already has its input shape', () => {
  const { ops } = backward((g) => {
    const a = g.input('a', 'float32', [2, 3]);
    const b = g.input('b', 'float32', [2, 3]);
    return { loss: g.reduceSum(g.sub(g.mul(a, b), a), undefined, false), wrt: [a, b] };
  });
  assert.ok(!ops.includes('ReduceSum') && !ops.includes('Squeeze'), ops.join(' '));
});
