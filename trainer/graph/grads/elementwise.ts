import type { GradRule } from '../autodiff.ts';
import type { Value } from '../builder.ts';
import { attr, GraphError } from '../builder.ts';

/** Gradients of elementwise ops (arithmetic, activations, Clip, Where, Cast, Sum). */
export const elementwiseGradRules: [string, GradRule][] = [
  ['Identity', (_c, _n, _i, _o, [gy]) => [gy!]],
  [
    'Add',
    (c, _n, [a, b], _o, [gy], needs) => [needs[0] ? c.unbroadcast(gy!, a!) : null, needs[1] ? c.unbroadcast(gy!, b!) : null],
  ],
  [
    'Sum',
    (c, _n, inputs, _o, [gy], needs) => inputs.map((x, i) => (needs[i] ? c.unbroadcast(gy!, x!) : null)),
  ],
  [
    'Sub',
    (c, _n, [a, b], _o, [gy], needs) => [needs[0] ? c.unbroadcast(gy!, a!) : null, needs[1] ? c.unbroadcast(c.g.neg(gy!), b!) : null],
  ],
  [
    'Mul',
    (c, _n, [a, b], _o, [gy], needs) => {
      const g = c.g;
      if (a!.name === b!.name) {
        // x * x: one contribution 2 * gy * x (scale the possibly small gy before touching x).
        return [c.unbroadcast(g.mul(g.mul(gy!, g.scalarLike(2, gy!)), a!), a!), null];
      }
      return [needs[0] ? c.unbroadcast(g.mul(gy!, b!), a!) : null, needs[1] ? c.unbroadcast(g.mul(gy!, a!), b!) : null];
    },
  ],
  [
    'Div',
    (c, _n, [a, b], [y], [gy], needs) => {
      const g = c.g;
      const ga = needs[0] || needs[1] ? g.div(gy!, b!) : null;
      return [needs[0] ? c.unbroadcast(ga!, a!) : null, needs[1] ? c.unbroadcast(g.neg(g.mul(ga!, y!)), b!) : null];
    },
  ],
  ['Neg', (c, _n, _i, _o, [gy]) => [c.g.neg(gy!)]],
  ['Relu', (c, _n, [x], _o, [gy]) => [c.g.op1('Where', [c.g.op1('Greater', [x!, c.g.scalarLike(0, x!)]), gy!, c.g.scalarLike(0, gy!)])]],
  [
    'Sigmoid',
    (c, _n, _i, [y], [gy]) => {
      const g = c.g;
      return [g.mul(gy!, g.mul(y!, g.sub(g.scalarLike(1, y!), y!)))];
    },
  ],
  ['Softplus', (c, _n, [x], _o, [gy]) => [c.g.mul(gy!, c.g.sigmoid(x!))]],
  ['Tanh', (c, _n, _i, [y], [gy]) => [c.g.mul(gy!, c.g.sub(c.g.scalarLike(1, y!), c.g.mul(y!, y!)))]],
  ['Exp', (c, _n, _i, [y], [gy]) => [c.g.mul(gy!, y!)]],
  ['Log', (c, _n, [x], _o, [gy]) => [c.g.div(gy!, x!)]],
  ['Sqrt', (c, _n, _i, [y], [gy]) => [c.g.div(c.g.mul(gy!, c.g.scalarLike(0.5, gy!)), y!)]],
  ['Reciprocal', (c, _n, _i, [y], [gy]) => [c.g.neg(c.g.mul(gy!, c.g.mul(y!, y!)))]],
  ['Abs', (c, _n, [x], _o, [gy]) => [c.g.mul(gy!, c.g.op1('Sign', [x!]))]],
  [
    'Pow',
    (c, _n, [a, b], [y], [gy], needs) => {
      const g = c.g;
      let ga: Value | null = null;
      if (needs[0]) {
        // d/da a^b = b * a^(b-1); for a constant exponent 2 that is just 2a.
        const bc = g.constValue(b!.name);
        if (bc && bc.data.length === 1 && Number(bc.data[0]) === 2) ga = g.mul(gy!, g.mul(a!, g.scalarLike(2, a!)));
        else ga = g.mul(gy!, g.mul(b!, g.pow(a!, g.sub(b!, g.scalarLike(1, b!)))));
      }
      const gb = needs[1] ? g.mul(gy!, g.mul(y!, g.log(a!))) : null;
      return [ga ? c.unbroadcast(ga, a!) : null, gb ? c.unbroadcast(gb, b!) : null];
    },
  ],
  [
    'Clip',
    (c, _n, [x, lo, hi], _o, [gy], needs) => {
      if (needs[1] || needs[2]) throw new GraphError('Clip: gradients with respect to min/max are not supported');
      const g = c.g;
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
    (c, _n, [cond, a, b], _o, [gy], needs) => {
      const g = c.g;
      const zero = g.scalarLike(0, gy!);
      return [
        null,
        needs[1] ? c.unbroadcast(g.op1('Where', [cond!, gy!, zero]), a!) : null,
        needs[2] ? c.unbroadcast(g.op1('Where', [cond!, zero, gy!]), b!) : null,
      ];
    },
  ],
  [
    'Cast',
    (c, _n, [x], _o, [gy]) => {
      if (x!.dtype !== 'float32' && x!.dtype !== 'float64') return [null];
      return [gy!.dtype === x!.dtype ? gy! : c.g.op1('Cast', [gy!], { to: attr.int(x!.dtype === 'float64' ? 11 : 1) })];
    },
  ],
];
