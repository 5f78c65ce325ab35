import type { Value } from '../types.ts';
import { attr, GraphError } from '../types.ts';
import type { GradRule } from './rule.ts';

const ints = (a: { kind: string; value?: unknown } | undefined, dflt: number[]): number[] =>
  a && a.kind === 'ints' ? [...(a.value as number[])] : dflt;

/**
 * MaxPool routes each output gradient to the position of its maximum.
 * 'indices' (exact, any geometry): the node's Indices output (flat over N*C*H*W) drives a ScatterElements
 * into zeros. 'mask' (kernel == stride, no padding): an equality mask against the broadcast maximum,
 * a few elementwise passes and no scatter; tied maxima each receive the gradient.
 */
const maxPoolRule: GradRule = ([gyIn], node, c) => {
  const g = c.g;
  const [x] = node.inputs;
  const { outputs } = node;
  const y = outputs[0]!;
  const gy = c.materialize(gyIn!, y);
  const kernel = ints(node.attrs['kernel_shape'], []);
  const strides = ints(node.attrs['strides'], kernel.map(() => 1));
  const pads = ints(node.attrs['pads'], kernel.map(() => 0).concat(kernel.map(() => 0)));
  const dil = ints(node.attrs['dilations'], kernel.map(() => 1));
  const simple =
    x!.shape.length === 4 &&
    kernel.every((k, i) => k === strides[i]) &&
    pads.every((p) => p === 0) &&
    dil.every((d) => d === 1) &&
    x!.shape.slice(2).every((d, i) => typeof d === 'number' && d % kernel[i]! === 0);
  if (c.options.maxPoolGrad === 'mask' && simple) {
    const [ch, h, w] = x!.shape.slice(1) as number[];
    const [kh, kw] = kernel as [number, number];
    const x6 = g.reshape(x!, [0, ch!, h! / kh, kh, w! / kw, kw]);
    const y6 = g.reshape(y, [0, ch!, h! / kh, 1, w! / kw, 1]);
    const gy6 = g.reshape(gy, [0, ch!, h! / kh, 1, w! / kw, 1]);
    const mask = g.op1('Equal', [x6, y6]);
    const routed = g.op1('Where', [mask, gy6, g.scalarLike(0, gy)]);
    return [g.reshape(routed, [0, ch!, h!, w!])];
  }
  if (node.attrs['storage_order'] && node.attrs['storage_order'].kind === 'int' && node.attrs['storage_order'].value !== 0) {
    throw new GraphError('MaxPool gradient: storage_order must be 0 (row major)');
  }
  const indices: Value = outputs[1] ?? g.addNodeOutput(node.graphNode, 'int64', y.shape, 'maxpool_indices');
  const flatZeros = g.reshape(g.zerosLike(x!), [-1]);
  // Overlapping windows can pick the same maximum twice: those contributions must add up.
  const overlapping = kernel.some((k, i) => (k - 1) * dil[i]! + 1 > strides[i]!);
  const scattered = g.op1('ScatterElements', [flatZeros, g.reshape(indices, [-1]), g.reshape(gy, [-1])], {
    axis: attr.int(0),
    ...(overlapping ? { reduction: attr.string('add') } : {}),
  });
  return [g.op('Reshape', [scattered, c.shapeOf(x!)], {}, { shapes: [{ dtype: x!.dtype, shape: x!.shape }] })[0]!];
};

export const poolGradRules: [string, GradRule][] = [['MaxPool', maxPoolRule]];
