import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { attr, Graph, makeTensor } from '../builder.ts';
import { decodeModel, encodeModel } from './encode.ts';
import { ModelProto } from './schema.ts';

test('every attribute kind, raw_data initializers and dim_param survive encoding', () => {
  const g = new Graph('attrs');
  const x = g.input('x', 'float32', ['batch', 3]);
  const w = g.initializer('w', makeTensor('float32', [3, 2], [1, 2, 3, 4, 5, 6.5]));
  const y = g.op1('MatMul', [x, w], {
    i: attr.int(-7),
    f: attr.float(0.25),
    is: attr.ints([1, 2, 3]),
    fs: attr.floats([0.5, -1.5]),
    s: attr.string('héllo'),
    t: attr.tensor(makeTensor('int64', [2], [4, -5])),
  });
  g.output(y, 'y');
  const bytes = encodeModel(g, { metadata: { k: 'v' } });
  const raw = ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, bytes: Array }) as any;
  const a = Object.fromEntries((raw.graph.node[0].attribute as any[]).map((e) => [e.name, e]));
  assert.equal(a.i.i, -7);
  assert.equal(a.i.type, 2);
  assert.equal(a.f.f, 0.25);
  assert.deepEqual(a.is.ints, [1, 2, 3]);
  assert.deepEqual(a.fs.floats, [0.5, -1.5]);
  assert.equal(new TextDecoder().decode(Uint8Array.from(a.s.s)), 'héllo');
  assert.deepEqual(a.t.t.dims, [2]);
  assert.equal(a.t.t.data_type, 7);
  const m = decodeModel(bytes);
  assert.equal(m.opset, 17);
  assert.deepEqual(m.inputs[0], { name: 'x', dtype: 'float32', shape: ['batch', 3] });
  assert.deepEqual(m.outputs[0], { name: 'y', dtype: 'float32', shape: ['batch', 2] });
  assert.deepEqual(Array.from(m.initializers.get('w')!.data as Float32Array), [1, 2, 3, 4, 5, 6.5]);
  assert.deepEqual(m.metadata, { k: 'v' });
});

test('onnxruntime runs an emitted graph with a tensor attribute, int64/bool constants and a dynamic dim', async () => {
  const g = new Graph('run');
  const x = g.input('x', 'float32', ['n', 4]);
  const zeros = g.zerosLike(x); // ConstantOfShape with a tensor attribute
  const pos = g.op1('Where', [g.op1('Greater', [x, g.scalar(0)]), x, zeros]);
  const cut = g.slice(pos, [1], [3], [1]);
  g.output(g.add(cut, g.constant(makeTensor('float32', [2], [10, 20]))), 'out');
  const s = await ort.InferenceSession.create(encodeModel(g));
  const out = await s.run({ x: new ort.Tensor('float32', Float32Array.from([-1, 2, -3, 4, 5, -6, 7, -8]), [2, 4]) });
  assert.deepEqual(out['out']!.dims, [2, 2]);
  assert.deepEqual(Array.from(out['out']!.data as Float32Array), [12, 20, 10, 27]);
  await s.release();
});
