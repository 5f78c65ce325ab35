import type { Graph } from './builder.ts';
import { convGradRules } from './grads/conv.ts';
import { elementwiseGradRules } from './grads/elementwise.ts';
import { normalizationGradRules } from './grads/normalization.ts';
import { poolGradRules } from './grads/pool.ts';
import { resizeGradRules } from './grads/resize.ts';
import { DEFAULT_GRAD_OPTIONS, GradContext, type GradNode, type GradOptions, type GradRule } from './grads/rule.ts';
import { shapeGradRules } from './grads/shape.ts';
import { softmaxGradRules } from './grads/softmax.ts';
import { GraphError, type Value } from './types.ts';

export { DEFAULT_GRAD_OPTIONS, GradContext };
export type { GradNode, GradOptions, GradRule };

const RULES: ReadonlyMap<string, GradRule> = new Map<string, GradRule>([
  ...elementwiseGradRules,
  ...shapeGradRules,
  ...convGradRules,
  ...poolGradRules,
  ...resizeGradRules,
  ...normalizationGradRules,
  ...softmaxGradRules,
]);

/** Ops whose outputs carry no gradient (integer/boolean results or shape plumbing). */
const NON_DIFFERENTIABLE = new Set(['Shape', 'Gather', 'ReduceProd', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or', 'ConstantOfShape', 'Sign', 'Floor', 'ArgMax']);

const isFloat = (v: Value) => v.dtype === 'float32' || v.dtype === 'float64';

export function hasGradRule(op: string): boolean {
  return RULES.has(op);
}

/**
 * Sums a rule's gradient over the axes along which `target` was broadcast: leading axes the target
 * lacks, and axes where the target has 1 and the gradient does not. The result has at most target's
 * rank and is broadcastable to it; a gradient that already is (the usual case) comes back unchanged,
 * without a node. Done here, once, for every rule.
 */
function unbroadcast(g: Graph, grad: Value, target: Value, op: string): Value {
  const gr = grad.shape.length;
  const tr = target.shape.length;
  const lead = Math.max(gr - tr, 0);
  const axes: number[] = [];
  for (let i = 0; i < gr; i++) {
    const gd = grad.shape[i]!;
    if (i < lead) {
      axes.push(i);
      continue;
    }
    const td = target.shape[i - (gr - tr)]!;
    if (td === 1 && gd !== 1) axes.push(i);
    else if (typeof td === 'number' && typeof gd === 'number' && gd !== 1 && gd !== td) {
      throw new GraphError(`${op} gradient of shape [${grad.shape}] does not broadcast to its input '${target.name}' [${target.shape}]`);
    }
  }
  let out = grad;
  if (axes.length) out = g.reduceSum(out, axes, true);
  if (lead > 0) out = g.op1('Squeeze', [out, g.int64s(Array.from({ length: lead }, (_, i) => i))]);
  return out;
}

/**
 * Reverse-mode differentiation of scalar `loss` with respect to `wrt`, appending the gradient graph to
 * `g`. Returns each wrt value's gradient, of exactly that value's shape. For each node, last to first,
 * the walker hands the rule its outputs' gradients, reduces each returned input gradient to its
 * input's shape (`unbroadcast`) and collects it; fan-out is handled by summing all contributions to a
 * value (one Sum node, which also broadcasts partial gradients).
 */
export function gradients(g: Graph, loss: Value, wrt: readonly Value[], options: Partial<GradOptions> = {}): Map<string, Value> {
  if (loss.shape.some((d) => d !== 1)) throw new GraphError(`loss '${loss.name}' must be a scalar, has shape [${loss.shape}]`);
  const ctx = new GradContext(g, { ...DEFAULT_GRAD_OPTIONS, ...options });
  const forward = [...g.nodes];

  // Values that depend on some wrt value: only those need gradients.
  const dependent = new Set(wrt.map((v) => v.name));
  for (const n of forward) {
    if (NON_DIFFERENTIABLE.has(n.op)) continue;
    if (n.inputs.some((i) => dependent.has(i))) for (const o of n.outputs) dependent.add(o);
  }
  if (!dependent.has(loss.name)) throw new GraphError(`loss '${loss.name}' does not depend on any of the requested values`);

  const contributions = new Map<string, Value[]>();
  const push = (name: string, v: Value) => {
    const list = contributions.get(name);
    if (list) list.push(v);
    else contributions.set(name, [v]);
  };
  const total = (name: string): Value | null => {
    const list = contributions.get(name);
    if (!list || list.length === 0) return null;
    if (list.length === 1) return list[0]!;
    const summed = g.op1('Sum', list);
    contributions.set(name, [summed]);
    return summed;
  };
  push(loss.name, g.scalarLike(1, loss));

  for (let k = forward.length - 1; k >= 0; k--) {
    const graphNode = forward[k]!;
    if (!graphNode.outputs.some((o) => contributions.has(o))) continue;
    const inputs = graphNode.inputs.map((i) => (i ? g.value(i) : null));
    const needs = inputs.map((v) => v !== null && dependent.has(v.name) && isFloat(v));
    if (!needs.some(Boolean)) continue;
    const rule = RULES.get(graphNode.op);
    if (!rule) throw new GraphError(`no gradient rule for op ${graphNode.op} (node ${graphNode.name})`);
    const node: GradNode = {
      op: graphNode.op,
      name: graphNode.name,
      attrs: graphNode.attrs,
      inputs,
      outputs: graphNode.outputs.map((o) => g.value(o)),
      needs,
      graphNode,
    };
    const gradOut = graphNode.outputs.map((o) => total(o));
    const gradIn = rule(gradOut, node, ctx);
    gradIn.forEach((gi, i) => {
      if (gi && needs[i]) push(inputs[i]!.name, unbroadcast(g, gi, inputs[i]!, graphNode.op));
    });
  }

  const result = new Map<string, Value>();
  for (const w of wrt) {
    const gsum = total(w.name);
    // A parameter the loss does not reach gets an explicit zero gradient.
    result.set(w.name, gsum ? ctx.materialize(gsum, w) : ctx.materialize(g.scalarLike(0, w), w));
  }
  return result;
}
