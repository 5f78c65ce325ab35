import type { Value } from '../types.ts';
import { GraphError } from '../types.ts';
import type { GradContext, GradNode, GradRule } from './rule.ts';

/**
 * Gradients of Softmax and LogSoftmax (opset 13+ semantics: normalised along one `axis`, default
 * -1). With y the node's output and gy its (possibly broadcastable) gradient:
 *   Softmax:    dx = y * (gy - sum(gy * y, axis, keepdims))
 *   LogSoftmax: dx = gy - exp(y) * sum(gy, axis, keepdims)     (exp(y) is softmax(x))
 * Both return full-shape gradients; nothing to unbroadcast.
 */
export function softmaxAxis(n: Pick<GradNode, 'attrs' | 'inputs'>): number {
  const a = n.attrs['axis'];
  if (a && a.kind !== 'int') throw new GraphError('Softmax/LogSoftmax: axis must be an int');
  const rank = n.inputs[0]!.shape.length;
  const axis = a ? a.value : -1;
  const norm = axis < 0 ? axis + rank : axis;
  if (norm < 0 || norm >= rank) throw new GraphError(`Softmax/LogSoftmax: axis ${axis} out of range for rank ${rank}`);
  return norm;
}

/** gy at least as large as y along `axis` (a reduction of gy over the axis must see every element). */
function fullAlong(c: GradContext, gy: Value, y: Value, axis: number): Value {
  const off = y.shape.length - gy.shape.length;
  const d = axis - off >= 0 ? gy.shape[axis - off] : 1;
  return d === y.shape[axis] ? gy : c.materialize(gy, y);
}

export const softmaxGradRules: [string, GradRule][] = [
  [
    'Softmax',
    ([gy], n, c) => {
      const g = c.g;
      const y = n.outputs[0]!;
      const axis = softmaxAxis(n);
      // gy * y has y's full shape, so the sum over the axis is exact even for a broadcastable gy.
      const dot = g.reduceSum(g.mul(gy!, y), [axis], true);
      return [g.mul(y, g.sub(gy!, dot))];
    },
  ],
  [
    'LogSoftmax',
    ([gy], n, c) => {
      const g = c.g;
      const y = n.outputs[0]!;
      const axis = softmaxAxis(n);
      const gFull = fullAlong(c, gy!, y, axis);
      const total = g.reduceSum(gFull, [axis], true);
      return [g.sub(gFull, g.mul(g.exp(y), total))];
    },
  ],
];
