import type { Value } from '../types.ts';
import { GraphError } from '../types.ts';
import type { GradRule } from './rule.ts';

/**
 * BatchNormalization, inference form: y = (x - mean) * inv * scale + bias, inv = 1 / sqrt(var + eps),
 * all per channel (axis 1). Training-form BN is built from ReduceMean statistics feeding this op, so
 * the same rule also carries the gradient into the batch statistics (mean, var inputs).
 *
 * Only per-channel sums of gy and gy*x touch the full tensor: with S1 = sum gy, S2 = sum gy*x,
 * sum gy*xhat = inv * (S2 - mean*S1), and
 *   dx = gy * scale*inv,  dscale = inv*(S2 - mean*S1),  dbias = S1,
 *   dmean = -scale*inv*S1,  dvar = -0.5 * scale * inv^3 * (S2 - mean*S1).
 */
const batchNormRule: GradRule = ([gyIn], node, c) => {
  const g = c.g;
  const [x, scale, , mean, variance] = node.inputs;
  const { outputs, needs } = node;
  if (outputs.length > 1) throw new GraphError('BatchNormalization gradient: only the single-output (inference) form is supported');
  if (needs.length > 5 || x!.shape.length < 2) throw new GraphError('BatchNormalization gradient: unexpected inputs');
  const y = outputs[0]!;
  const gy = c.materialize(gyIn!, y);
  const epsA = node.attrs['epsilon'];
  const eps = epsA && epsA.kind === 'float' ? epsA.value : 1e-5;
  const rank = x!.shape.length;
  const bshape = [1, -1, ...Array(rank - 2).fill(1)]; // per-channel [C] -> broadcastable [1, C, 1, ...]
  const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
  const inv = g.op1('Reciprocal', [g.sqrt(g.add(variance!, g.scalarLike(eps, variance!)))]);
  const a = g.mul(scale!, inv);
  const gx = needs[0] ? g.mul(gy, g.reshape(a, bshape)) : null;
  const needS1 = needs[1] || needs[2] || needs[3] || needs[4];
  const s1 = needS1 ? g.reduceSum(gy, axes, false) : null;
  let centred: Value | null = null; // S2 - mean*S1
  if (needs[1] || needs[4]) {
    const s2 = g.reduceSum(g.mul(gy, x!), axes, false);
    centred = g.sub(s2, g.mul(mean!, s1!));
  }
  const gscale = needs[1] ? g.mul(inv, centred!) : null;
  const gbias = needs[2] ? s1 : null;
  const gmean = needs[3] ? g.neg(g.mul(a, s1!)) : null;
  const gvar = needs[4] ? g.mul(g.mul(g.scalarLike(-0.5, inv), g.mul(scale!, g.mul(inv, g.mul(inv, inv)))), centred!) : null;
  return [gx, gscale, gbias, gmean, gvar];
};

export const normalizationGradRules: [string, GradRule][] = [['BatchNormalization', batchNormRule]];
