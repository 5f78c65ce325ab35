import type { Value } from '../types.ts';
import { attr, GraphError } from '../types.ts';
import type { GradRule } from './rule.ts';

/**
 * Gradients of elementwise ops (arithmetic, activations, Clip, Where, Cast, Sum). Broadcasting
 * binary ops return their input gradients at the broadcast output shape; the walker sums them down
 * to each input's shape.
 */
export const elementwiseGradRules: [string, GradRule][] = [
  ['Identity', ([gy]) => [gy!]],
  ['Add', ([gy]) => [gy!, gy!]],
  ['Sum', ([gy], n) => n.inputs.map(() => gy!)],
  ['Sub', ([gy], n, c) => [gy!, n.needs[1] ? c.g.neg(gy!) : null]],
  [
    'Mul',
    ([gy], n, c) => {
      const g = c.g;
      const [a, b] = n.inputs;
      if (a!.name === b!.name) {
        // x * x: one contribution 2 * gy * x (scale the possibly small gy before touching x).
        return [g.mul(g.mul(gy!, g.scalarLike(2, gy!)), a!), null];
      }
      return [n.needs[0] ? g.mul(gy!, b!) : null, n.needs[1] ? g.mul(gy!, a!) : null];
    },
  ],
  [
    'Div',
    ([gy], n, c) => {
      const g = c.g;
      const ga = g.div(gy!, n.inputs[1]!);
      return [ga, n.needs[1] ? g.neg(g.mul(ga, n.outputs[0]!)) : null];
    },
  ],
  ['Neg', ([gy], _n, c) => [c.g.neg(gy!)]],
  ['Relu', ([gy], n, c) => [c.g.op1('Where', [c.g.op1('Greater', [n.inputs[0]!, c.g.scalarLike(0, n.inputs[0]!)]), gy!, c.g.scalarLike(0, gy!)])]],
  [
    'Sigmoid',
    ([gy], n, c) => {
      const g = c.g;
      const y = n.outputs[0]!;
      return [g.mul(gy!, g.mul(y, g.sub(g.scalarLike(1, y), y)))];
    },
  ],
  ['Softplus', ([gy], n, c) => [c.g.mul(gy!, c.g.sigmoid(n.inputs[0]!))]],
  ['Tanh', ([gy], n, c) => [c.g.mul(gy!, c.g.sub(c.g.scalarLike(1, n.outputs[0]!), c.g.mul(n.outputs[0]!, n.outputs[0]!)))]],
  ['Exp', ([gy], n, c) => [c.g.mul(gy!, n.outputs[0]!)]],
  ['Log', ([gy], n, c) => [c.g.div(gy!, n.inputs[0]!)]],
  ['Sqrt', ([gy], n, c) => [c.g.div(c.g.mul(gy!, c.g.scalarLike(0.5, gy!)), n.outputs[0]!)]],
  ['Reciprocal', ([gy], n, c) => [c.g.neg(c.g.mul(gy!, c.g.mul(n.outputs[0]!, n.outputs[0]!)))]],
  ['Abs', ([gy], n, c) => [c.g.mul(gy!, c.g.op1('Sign', [n.inputs[0]!]))]],
  [
    'Pow',
    ([gy], n, c) => {
      const g = c.g;
      const [a, b] = n.inputs as [Value, Value];
      let ga: Value | null = null;
      if (n.needs[0]) {
        // d/da a^b = b * a^(b-1); for a constant exponent 2 that is just 2a.
        const bc = g.constValue(b.name);
        if (bc && bc.data.length === 1 && Number(bc.data[0]) === 2) ga = g.mul(gy!, g.mul(a, g.scalarLike(2, a)));
        else ga = g.mul(gy!, g.mul(b, g.pow(a, g.sub(b, g.scalarLike(1, b)))));
      }
      const gb = n.needs[1] ? g.mul(gy!, g.mul(n.outputs[0]!, g.log(a))) : null;
      return [ga, gb];
    },
  ],
  [
    'Clip',
    ([gy], n, c) => {
      if (n.needs[1] || n.needs[2]) throw new GraphError('Clip: gradients with respect to min/max are not supported');
      const g = c.g;
      const [x, lo, hi] = n.inputs;
      // PyTorch's clamp passes the gradient where min <= x <= max.
      let keep: Value | null = null;
      if (lo) keep = g.op1('GreaterOrEqual', [x!, lo]);
      if (hi) {
        const le = g.op1('LessOrEqual', [x!, hi]);
        keep = keep ? g.op1('And', [keep, le]) : le;
      }
      return [keep ? g.op1('Where', [keep, gy!, g.scalarLike(0, gy!)]) : gy!, null, null];
    },
  ],
  [
    'Where',
    ([gy], n, c) => {
      const g = c.g;
      const cond = n.inputs[0]!;
      const zero = g.scalarLike(0, gy!);
      return [null, n.needs[1] ? g.op1('Where', [cond, gy!, zero]) : null, n.needs[2] ? g.op1('Where', [cond, zero, gy!]) : null];
    },
  ],
  [
    'Cast',
    ([gy], n, c) => {
      const x = n.inputs[0]!;
      if (x.dtype !== 'float32' && x.dtype !== 'float64') return [null];
      return [gy!.dtype === x.dtype ? gy! : c.g.op1('Cast', [gy!], { to: attr.int(x.dtype === 'float64' ? 11 : 1) })];
    },
  ],
];
