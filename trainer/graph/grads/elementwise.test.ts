import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeTensor, type Graph, type Value } from '../builder.ts';
import { awayFromZero, gradCheck, type GradCheckInput } from './gradcheck.ts';

async function expectGradOk(name: string, inputs: GradCheckInput[], build: (g: Graph, v: Value[]) => Value, dtype: 'float32' | 'float64' = 'float64') {
  const r = await gradCheck({ inputs, build, dtype });
  assert.ok(r.checked > 0, `${name}: nothing checked`);
  assert.deepEqual(r.failures, [], `${name}: worst ${JSON.stringify(r.worst)}`);
}

const positive = (n: number, seed: number) => awayFromZero(n, 0.3, seed).map(Math.abs);

test('Add/Sub/Mul/Div with broadcasting (per-channel and scalar operands)', async () => {
  const inputs = (): GradCheckInput[] => [
    { name: 'a', dims: [2, 3, 2, 2] },
    { name: 'b', dims: [1, 3, 1, 1], data: positive(3, 2) },
  ];
  await expectGradOk('Add', inputs(), (g, [a, b]) => g.add(a!, b!));
  await expectGradOk('Sub', inputs(), (g, [a, b]) => g.sub(a!, b!));
  await expectGradOk('Sub reversed', inputs(), (g, [a, b]) => g.sub(b!, a!));
  await expectGradOk('Mul', inputs(), (g, [a, b]) => g.mul(a!, b!));
  await expectGradOk('Div', inputs(), (g, [a, b]) => g.div(a!, b!));
  await expectGradOk('Div by full', [{ name: 'a', dims: [3] }, { name: 'b', dims: [2, 3], data: positive(6, 3) }], (g, [a, b]) => g.div(a!, b!));
});

test('x * x, fan-out (one value used three times) and Sum', async () => {
  await expectGradOk('square', [{ name: 'x', dims: [2, 3] }], (g, [x]) => g.mul(x!, x!));
  await expectGradOk('fan-out', [{ name: 'x', dims: [2, 3] }], (g, [x]) => g.add(g.mul(x!, g.exp(x!)), g.op1('Sum', [x!, g.sigmoid(x!), g.scalar(2, 'float64')])));
});

test('unary ops: Neg, Relu, Sigmoid, Tanh, Exp, Log, Sqrt, Reciprocal, Abs', async () => {
  const x = (): GradCheckInput[] => [{ name: 'x', dims: [2, 5], data: awayFromZero(10, 0.1, 7) }];
  const px = (): GradCheckInput[] => [{ name: 'x', dims: [2, 5], data: positive(10, 8) }];
  await expectGradOk('Neg', x(), (g, [v]) => g.neg(v!));
  await expectGradOk('Relu', x(), (g, [v]) => g.relu(v!));
  await expectGradOk('Sigmoid', x(), (g, [v]) => g.sigmoid(v!));
  await expectGradOk('Tanh', x(), (g, [v]) => g.op1('Tanh', [v!]));
  await expectGradOk('Exp', x(), (g, [v]) => g.exp(v!));
  await expectGradOk('Abs', x(), (g, [v]) => g.abs(v!));
  await expectGradOk('Log', px(), (g, [v]) => g.log(v!));
  await expectGradOk('Sqrt', px(), (g, [v]) => g.sqrt(v!));
  await expectGradOk('Reciprocal', px(), (g, [v]) => g.op1('Reciprocal', [v!]));
});

test('Softplus (float32 only in onnxruntime)', async () => {
  await expectGradOk('Softplus', [{ name: 'x', dims: [2, 5], data: awayFromZero(10, 0.1, 9) }], (g, [v]) => g.op1('Softplus', [v!]), 'float32');
});

test('Pow with constant and with variable exponent', async () => {
  await expectGradOk('Pow 2', [{ name: 'x', dims: [6] }], (g, [v]) => g.pow(v!, g.scalar(2, 'float64')));
  await expectGradOk('Pow 1.5', [{ name: 'x', dims: [6], data: positive(6, 4) }], (g, [v]) => g.pow(v!, g.scalar(1.5, 'float64')));
  await expectGradOk('Pow both', [{ name: 'x', dims: [6], data: positive(6, 5) }, { name: 'e', dims: [6] }], (g, [v, e]) => g.pow(v!, e!));
});

test('Clip passes the gradient inside [min, max] only; Where routes it to the chosen branch', async () => {
  const data = [-2.1, -0.9, -0.3, 0.2, 0.45, 0.8, 1.3, 2.2];
  await expectGradOk('Clip', [{ name: 'x', dims: [8], data }], (g, [v]) => g.clip(v!, -0.5, 1));
  await expectGradOk('Clip min only', [{ name: 'x', dims: [8], data }], (g, [v]) => g.clip(v!, 0));
  await expectGradOk(
    'Where',
    [{ name: 'a', dims: [2, 4] }, { name: 'b', dims: [1, 4] }],
    (g, [a, b]) => g.op1('Where', [g.constant(makeTensor('bool', [2, 4], [1, 0, 1, 0, 0, 0, 1, 1])), a!, b!]),
  );
});
