import type { Attrs, Value } from '../types.ts';
import { attr, GraphError } from '../types.ts';
import type { GradContext, GradNode, GradRule } from './rule.ts';

function intsOf(c: GradContext, v: Value | null | undefined): number[] | null {
  if (!v) return null;
  const t = c.g.constValue(v.name);
  if (!t) throw new GraphError(`gradient needs '${v.name}' to be a constant`);
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

const norm = (a: number, rank: number) => (a < 0 ? a + rank : a);

function reduceAxes(c: GradContext, op: string, x: Value, inputs: readonly (Value | null)[], attrs: Attrs): number[] {
  const rank = x.shape.length;
  const fromInput = op === 'ReduceSum' || c.g.opset >= 18;
  const a = attrs['axes'];
  const axes = fromInput ? intsOf(c, inputs[1]) : a && a.kind === 'ints' ? [...a.value] : null;
  return axes && axes.length ? axes.map((v) => norm(v, rank)).sort((p, q) => p - q) : x.shape.map((_, i) => i);
}

/** The gradient of a reduction at keepdims shape (divided by the count for a mean). */
function reducedGrad(gy: Value, n: GradNode, c: GradContext, mean: boolean): Value {
  const x = n.inputs[0]!;
  const axes = reduceAxes(c, n.op, x, n.inputs, n.attrs);
  const keep = n.attrs['keepdims']?.kind === 'int' ? n.attrs['keepdims'].value === 1 : true;
  let gk = gy;
  if (!keep && gk.shape.length < x.shape.length) gk = c.g.op1('Unsqueeze', [gk, c.g.int64s(axes)]);
  if (mean) gk = c.g.div(gk, c.countOf(x, axes));
  return gk;
}

/** Reduction gradients stay small (keepdims shape) and broadcast lazily into their consumers. */
const reduceRule =
  (mean: boolean): GradRule =>
  ([gy], n, c) => [reducedGrad(gy!, n, c, mean), null];

/** d/dx sum(x^2) = 2x * gy, with gy kept small until it meets x. */
const reduceSumSquareRule: GradRule = ([gy], n, c) => {
  const x = n.inputs[0]!;
  return [c.g.mul(x, c.g.mul(reducedGrad(gy!, n, c, false), c.g.scalarLike(2, x))), null];
};

/** Reshape-like ops: the output gradient, at the output's exact shape, reshaped back to the input's. */
const reshapeBack: GradRule = ([gy], n, c) => {
  const x = n.inputs[0]!;
  const back = c.g.op('Reshape', [c.materialize(gy!, n.outputs[0]!), c.shapeOf(x)], {}, { shapes: [{ dtype: gy!.dtype, shape: x.shape }] })[0]!;
  return [back, ...n.inputs.slice(1).map(() => null)];
};

export const shapeGradRules: [string, GradRule][] = [
  ['ReduceSum', reduceRule(false)],
  ['ReduceMean', reduceRule(true)],
  ['ReduceSumSquare', reduceSumSquareRule],
  ['Reshape', reshapeBack],
  ['Flatten', reshapeBack],
  ['Squeeze', reshapeBack],
  ['Unsqueeze', reshapeBack],
  // The walker sums the output gradient over the expanded axes.
  ['Expand', ([gy]) => [gy!, null]],
  [
    'Transpose',
    ([gy], n, c) => {
      const x = n.inputs[0]!;
      const a = n.attrs['perm'];
      const perm = a && a.kind === 'ints' ? a.value : x.shape.map((_, i) => x.shape.length - 1 - i);
      const inv: number[] = [];
      perm.forEach((p, i) => (inv[p] = i));
      return [c.g.transpose(c.materialize(gy!, n.outputs[0]!), inv)];
    },
  ],
  [
    'Concat',
    ([gy], n, c) => {
      const y = n.outputs[0]!;
      const a = n.attrs['axis'];
      const axis = norm(a && a.kind === 'int' ? a.value : 0, y.shape.length);
      const sizes = n.inputs.map((v) => {
        const d = v!.shape[axis]!;
        if (typeof d !== 'number') throw new GraphError('Concat gradient needs static sizes along the concat axis');
        return d;
      });
      const parts = c.g.op('Split', [c.materialize(gy!, y), c.g.int64s(sizes)], { axis: attr.int(axis) }, { outputs: sizes.length });
      return parts.map((p, i) => (n.needs[i] ? p : null));
    },
  ],
  [
    'Split',
    (gys, n, c) => {
      const a = n.attrs['axis'];
      const axis = norm(a && a.kind === 'int' ? a.value : 0, n.inputs[0]!.shape.length);
      const parts = n.outputs.map((o, i) => (gys[i] ? c.materialize(gys[i]!, o) : c.g.zerosLike(o)));
      return [c.g.concat(parts, axis), null];
    },
  ],
  [
    'Slice',
    ([gy], n, c) => {
      const [x, starts, ends, axesV, stepsV] = n.inputs;
      const rank = x!.shape.length;
      const st = intsOf(c, starts)!;
      const en = intsOf(c, ends)!;
      const axes = (intsOf(c, axesV) ?? st.map((_, i) => i)).map((v) => norm(v, rank));
      const steps = intsOf(c, stepsV) ?? st.map(() => 1);
      if (steps.some((s) => s !== 1)) throw new GraphError('Slice gradient supports step 1 only');
      const before = new Array(rank).fill(0);
      const after = new Array(rank).fill(0);
      axes.forEach((ax, i) => {
        const dim = x!.shape[ax]!;
        if (typeof dim !== 'number') throw new GraphError('Slice gradient needs static sizes on sliced axes');
        const s = Math.min(Math.max(st[i]! < 0 ? st[i]! + dim : st[i]!, 0), dim);
        const e = Math.min(Math.max(en[i]! < 0 ? en[i]! + dim : en[i]!, 0), dim);
        before[ax] = s;
        after[ax] = dim - Math.max(e, s);
      });
      const padded = c.g.op1('Pad', [c.materialize(gy!, n.outputs[0]!), c.g.int64s([...before, ...after])]);
      return [padded, null, null, null, null];
    },
  ],
];
