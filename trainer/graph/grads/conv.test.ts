import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GradOptions } from '../autodiff.ts';
import { attr, type Attrs, type Graph, type Value } from '../builder.ts';
import { gradCheck, type GradCheckInput } from './gradcheck.ts';

// onnxruntime's CPU Conv/ConvTranspose are float32 only, hence float32 checks on small tensors.
async function expectGradOk(name: string, inputs: GradCheckInput[], build: (g: Graph, v: Value[]) => Value, gradOptions: Partial<GradOptions>) {
  const r = await gradCheck({ inputs, build, dtype: 'float32', gradOptions });
  assert.ok(r.checked > 0, `${name}: nothing checked`);
  assert.deepEqual(r.failures, [], `${name} ${JSON.stringify(gradOptions)}: worst ${JSON.stringify(r.worst)}`);
}

const variants: Partial<GradOptions>[] = [
  { convWeightGrad: 'conv', convInputGrad: 'convtranspose' },
  { convWeightGrad: 'matmul', convInputGrad: 'conv' },
  { convWeightGrad: 'im2col', convInputGrad: 'conv' },
];

const conv = (attrs: Attrs) => (g: Graph, [x, w, b]: Value[]) => g.op1('Conv', b ? [x!, w!, b] : [x!, w!], attrs);

test('Conv 3x3, pad 1, stride 1, with bias and a dynamic batch', async () => {
  for (const v of variants) {
    await expectGradOk(
      'conv3x3',
      [{ name: 'x', dims: [2, 3, 5, 5], shape: ['N', 3, 5, 5] }, { name: 'w', dims: [4, 3, 3, 3] }, { name: 'b', dims: [4] }],
      conv({ kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) }),
      v,
    );
  }
});

test('Conv with stride 2 on an odd size (output_padding in the input gradient), asymmetric pads, dilation 2, 1x1', async () => {
  for (const v of variants) {
    await expectGradOk(
      'stride2',
      [{ name: 'x', dims: [1, 2, 7, 6] }, { name: 'w', dims: [3, 2, 3, 3] }],
      conv({ kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 0, 1, 1]), strides: attr.ints([2, 2]) }),
      v,
    );
    await expectGradOk(
      'dilated',
      [{ name: 'x', dims: [1, 2, 7, 7] }, { name: 'w', dims: [2, 2, 3, 3] }],
      conv({ kernel_shape: attr.ints([3, 3]), pads: attr.ints([2, 2, 2, 2]), dilations: attr.ints([2, 2]) }),
      v,
    );
    await expectGradOk('1x1', [{ name: 'x', dims: [2, 3, 3, 3] }, { name: 'w', dims: [2, 3, 1, 1] }, { name: 'b', dims: [2] }], conv({ kernel_shape: attr.ints([1, 1]) }), v);
  }
});

test('ConvTranspose 2x2 stride 2 with bias, and 3x3 stride 2 pad 1 with output_padding', async () => {
  for (const v of variants) {
    await expectGradOk(
      'up2x2',
      [{ name: 'x', dims: [2, 3, 3, 3], shape: ['N', 3, 3, 3] }, { name: 'w', dims: [3, 2, 2, 2] }, { name: 'b', dims: [2] }],
      (g, [x, w, b]) => g.op1('ConvTranspose', [x!, w!, b!], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) }),
      v,
    );
    await expectGradOk(
      'convT3x3',
      [{ name: 'x', dims: [1, 2, 3, 4] }, { name: 'w', dims: [2, 3, 3, 3] }],
      (g, [x, w]) =>
        g.op1('ConvTranspose', [x!, w!], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]), output_padding: attr.ints([1, 0]) }),
      v,
    );
  }
});

test('Conv with pads larger than the kernel reach (input gradient falls back to ConvTranspose)', async () => {
  await expectGradOk(
    'wide pads',
    [{ name: 'x', dims: [1, 2, 3, 3] }, { name: 'w', dims: [2, 2, 2, 2] }],
    conv({ kernel_shape: attr.ints([2, 2]), pads: attr.ints([2, 0, 1, 2]) }),
    { convInputGrad: 'conv', convWeightGrad: 'im2col' },
  );
});

test('Conv weight gradient from gy-side patches (fewer output than input channels), with asymmetric pads', async () => {
  await expectGradOk(
    'gy-side',
    [{ name: 'x', dims: [2, 4, 5, 4], shape: ['N', 4, 5, 4] }, { name: 'w', dims: [2, 4, 3, 3] }],
    conv({ kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 2, 0, 1]) }),
    { convWeightGrad: 'im2col' },
  );
});

test('two chained convs with ReLU between (gradient flows through Conv input and weights together)', async () => {
  await expectGradOk(
    'chain',
    [{ name: 'x', dims: [1, 2, 4, 4] }, { name: 'w1', dims: [3, 2, 3, 3] }, { name: 'w2', dims: [2, 3, 3, 3] }],
    (g, [x, w1, w2]) => {
      const a = { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) };
      return g.op1('Conv', [g.op1('Sigmoid', [g.op1('Conv', [x!, w1!], a)]), w2!], a);
    },
    variants[1]!,
  );
});
