import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { Graph, GraphError, type Value } from '../builder.ts';
import { encodeModel } from '../onnx/encode.ts';
import { gradCheck, type GradCheckInput } from './gradcheck.ts';
import { Rng } from '../../../core/rng.ts';
import { gaussian } from '../../model/gaussian.ts';

async function expectGradOk(t: { diagnostic(m: string): void }, name: string, inputs: GradCheckInput[], build: (g: Graph, v: Value[]) => Value) {
  const r = await gradCheck({ inputs, build, dtype: 'float64' });
  assert.ok(r.checked > 0, `${name}: nothing checked`);
  assert.deepEqual(r.failures, [], `${name}: worst ${JSON.stringify(r.worst)}`);
  const w = r.worst!;
  t.diagnostic(`${name}: ${r.checked} elements, worst |analytic - numeric| = ${Math.abs(w.analytic - w.numeric).toExponential(2)} (at ${w.input}[${w.index}])`);
}

const x4 = (): GradCheckInput[] => [{ name: 'x', dims: [2, 3, 4, 5] }];

test('Softmax gradient by finite differences ([2,3,4,5], axis 1, axis -1, dynamic batch)', async (t) => {
  await expectGradOk(t, 'Softmax axis 1', x4(), (g, [x]) => g.softmax(x!, 1));
  await expectGradOk(t, 'Softmax axis -1', x4(), (g, [x]) => g.softmax(x!, -1));
  await expectGradOk(t, 'Softmax axis 1, N symbolic', [{ name: 'x', dims: [2, 3, 4, 5], shape: ['N', 3, 4, 5] }], (g, [x]) => g.softmax(x!, 1));
  // The gradient reaching Softmax is broadcastable ([2,1,4,5]) along the softmax axis.
  await expectGradOk(t, 'Softmax, gradient broadcast along the axis', x4(), (g, [x]) => g.mul(g.reduceSum(g.softmax(x!, 1), [1], true), g.reduceMean(g.softmax(x!, 1), [1], true)));
  await expectGradOk(t, 'Softmax with fan-out', x4(), (g, [x]) => g.mul(g.softmax(x!, 1), g.sigmoid(x!)));
});

test('LogSoftmax gradient by finite differences ([2,3,4,5], axis 1, axis -1, broadcast gradient)', async (t) => {
  await expectGradOk(t, 'LogSoftmax axis 1', x4(), (g, [x]) => g.logSoftmax(x!, 1));
  await expectGradOk(t, 'LogSoftmax axis -1', x4(), (g, [x]) => g.logSoftmax(x!, -1));
  await expectGradOk(t, 'LogSoftmax axis 1, N symbolic', [{ name: 'x', dims: [2, 3, 4, 5], shape: ['N', 3, 4, 5] }], (g, [x]) => g.logSoftmax(x!, 1));
  await expectGradOk(t, 'LogSoftmax, gradient broadcast along the axis', x4(), (g, [x]) => g.reduceMean(g.logSoftmax(x!, 1), [1], true));
  await expectGradOk(t, 'LogSoftmax, gradient [1,3,1,1]', x4(), (g, [x]) => g.reduceSum(g.logSoftmax(x!, 1), [0, 2, 3], true));
  // Cross-entropy against fixed one-hot targets.
  const onehot = Array.from({ length: 120 }, (_, i) => (Math.floor(i / 20) % 3 === (i % 20) % 3 ? 1 : 0));
  await expectGradOk(
    t,
    'cross-entropy',
    [...x4(), { name: 't', dims: [2, 3, 4, 5], data: onehot, wrt: false }],
    (g, [x, tt]) => g.neg(g.reduceMean(g.reduceSum(g.mul(tt!, g.logSoftmax(x!, 1)), [1], false), undefined, false)),
  );
});

/** Reference softmax along axis 1 of an N x C x (rest) array, in float64, max-subtracted. */
function jsSoftmax(x: ArrayLike<number>, n: number, c: number, rest: number, log = false): Float64Array {
  const out = new Float64Array(n * c * rest);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < rest; i++) {
      let m = -Infinity;
      for (let k = 0; k < c; k++) m = Math.max(m, x[(b * c + k) * rest + i]!);
      let s = 0;
      for (let k = 0; k < c; k++) s += Math.exp(x[(b * c + k) * rest + i]! - m);
      for (let k = 0; k < c; k++) {
        const z = x[(b * c + k) * rest + i]! - m;
        out[(b * c + k) * rest + i] = log ? z - Math.log(s) : Math.exp(z) / s;
      }
    }
  }
  return out;
}

test('Softmax / LogSoftmax / ArgMax forward outputs match a JS softmax (float32 and float64, large logits)', async () => {
  const [n, c, h, w] = [2, 3, 4, 5];
  const normal = gaussian(new Rng(11));
  const x = Array.from({ length: n * c * h * w }, (_, i) => normal() * 4 + (i % 7 === 0 ? 500 : 0));
  for (const dtype of ['float32', 'float64'] as const) {
    const g = new Graph('softmax');
    const inp = g.input('x', dtype, ['N', c, h, w]);
    const sm = g.softmax(inp, 1);
    const lsm = g.logSoftmax(inp, 1);
    const am = g.argMax(inp, 1, false);
    assert.deepEqual(sm.shape, ['N', c, h, w]);
    assert.deepEqual(am.shape, ['N', h, w]);
    assert.equal(am.dtype, 'int64');
    g.output(sm, 'sm');
    g.output(lsm, 'lsm');
    g.output(am, 'am');
    const s = await ort.InferenceSession.create(encodeModel(g));
    const data = dtype === 'float32' ? Float32Array.from(x) : Float64Array.from(x);
    const out = await s.run({ x: new ort.Tensor(dtype, data, [n, c, h, w]) });
    await s.release();
    const ref = jsSoftmax(data, n, c, h * w);
    const refLog = jsSoftmax(data, n, c, h * w, true);
    const tol = dtype === 'float32' ? 1e-5 : 1e-12;
    const got = out['sm']!.data as Float32Array;
    const gotLog = out['lsm']!.data as Float32Array;
    for (let i = 0; i < ref.length; i++) {
      assert.ok(Math.abs(got[i]! - ref[i]!) <= tol, `${dtype} softmax[${i}]: ${got[i]} vs ${ref[i]}`);
      assert.ok(Math.abs(gotLog[i]! - refLog[i]!) <= tol * Math.max(1, Math.abs(refLog[i]!)) * 10, `${dtype} logsoftmax[${i}]: ${gotLog[i]} vs ${refLog[i]}`);
    }
    const arg = out['am']!.data as BigInt64Array;
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < h * w; i++) {
        let best = 0;
        for (let k = 1; k < c; k++) if (data[(b * c + k) * h * w + i]! > data[(b * c + best) * h * w + i]!) best = k;
        assert.equal(Number(arg[b * h * w + i]), best);
      }
    }
  }
});

test('Softmax axis is checked by shape inference', () => {
  const g = new Graph('bad');
  const x = g.input('x', 'float32', [2, 3]);
  assert.throws(() => g.softmax(x, 2), GraphError);
  assert.throws(() => g.logSoftmax(x, -3), GraphError);
  assert.deepEqual(g.softmax(x, -1).shape, [2, 3]);
});
