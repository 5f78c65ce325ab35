import type { Graph, Node, Shape, Value } from './builder.ts';
import { attr, GraphError } from './builder.ts';
import { convGradRules } from './grads/conv.ts';
import { elementwiseGradRules } from './grads/elementwise.ts';
import { normalizationGradRules } from './grads/normalization.ts';
import { poolGradRules } from './grads/pool.ts';
import { resizeGradRules } from './grads/resize.ts';
import { shapeGradRules } from './grads/shape.ts';

/**
 * Gradient-building context handed to rules. Gradients flowing through here may be *broadcastable*
 * to their value's shape rather than equal to it (e.g. the gradient of a ReduceMean is [1,C,1,1]):
 * elementwise consumers broadcast for free; rules that need the exact shape call `materialize`.
 */
export class GradContext {
  constructor(
    readonly g: Graph,
    readonly options: GradOptions,
  ) {}

  /** A 1-D int64 tensor with x's shape: a constant when static, a Shape node when a dim is symbolic. */
  shapeOf(x: Value): Value {
    if (x.shape.every((d) => typeof d === 'number')) return this.g.int64s(x.shape as number[]);
    return this.g.op1('Shape', [x]);
  }

  /** Expands a broadcastable gradient to exactly `target`'s shape. */
  materialize(grad: Value, target: Value): Value {
    if (sameShape(grad.shape, target.shape)) return grad;
    return this.g.op('Expand', [grad, this.shapeOf(target)], {}, { shapes: [{ dtype: grad.dtype, shape: target.shape }] })[0]!;
  }

  /**
   * Sums a gradient over the axes along which `target` was broadcast, so it is broadcastable to
   * target (and of target's rank). Axes where the gradient is already 1 are left alone.
   */
  unbroadcast(grad: Value, target: Value): Value {
    const gr = grad.shape.length;
    const tr = target.shape.length;
    const lead = gr - tr;
    const axes: number[] = [];
    for (let i = 0; i < gr; i++) {
      const gd = grad.shape[i]!;
      if (i < lead) {
        axes.push(i);
        continue;
      }
      const td = target.shape[i - lead]!;
      if (td === 1 && gd !== 1) axes.push(i);
    }
    let out = grad;
    if (axes.length) out = this.g.reduceSum(out, axes, true);
    if (lead > 0) out = this.g.op1('Squeeze', [out, this.g.int64s(Array.from({ length: lead }, (_, i) => i))]);
    else if (lead < 0) {
      // A gradient of lower rank than its target is broadcastable as is.
    }
    return out;
  }

  /** Number of elements over `axes` of x as a scalar of x's dtype (runtime when a dim is symbolic). */
  countOf(x: Value, axes: readonly number[]): Value {
    const dims = axes.map((a) => x.shape[a]!);
    if (dims.every((d) => typeof d === 'number')) return this.g.scalarLike((dims as number[]).reduce((a, b) => a * b, 1), x);
    const shape = this.g.op1('Shape', [x]);
    const picked = this.g.op1('Gather', [shape, this.g.int64s(axes)], { axis: attr.int(0) });
    const prod = this.g.op('ReduceProd', [picked], { keepdims: attr.int(0) }, { shapes: [{ dtype: 'int64', shape: [] }] })[0]!;
    return this.g.op1('Cast', [prod], { to: attr.int(x.dtype === 'float64' ? 11 : 1) });
  }
}

export interface GradOptions {
  /** How a Conv/ConvTranspose weight gradient is computed (see grads/conv.ts). */
  convWeightGrad: 'conv' | 'matmul' | 'im2col';
  /** How a Conv input gradient is computed: ConvTranspose with the same weights, or Conv with flipped weights. */
  convInputGrad: 'convtranspose' | 'conv';
  /** MaxPool gradient routing: exact argmax (Indices + ScatterElements) or an equality mask (ties share). */
  maxPoolGrad: 'indices' | 'mask';
}

/** Defaults chosen by measurement (bench/train-step.ts --variants): see the report in that file. */
export const DEFAULT_GRAD_OPTIONS: GradOptions = { convWeightGrad: 'im2col', convInputGrad: 'conv', maxPoolGrad: 'indices' };

/**
 * A rule gets the node, its input/output values, the (broadcastable) gradient of each output (null if
 * none reaches it) and which inputs need a gradient; it returns one gradient (or null) per input, each
 * broadcastable to that input's shape.
 */
export type GradRule = (
  ctx: GradContext,
  node: Node,
  inputs: readonly (Value | null)[],
  outputs: readonly Value[],
  gradOutputs: readonly (Value | null)[],
  needs: readonly boolean[],
) => (Value | null)[];

const RULES: ReadonlyMap<string, GradRule> = new Map<string, GradRule>([
  ...elementwiseGradRules,
  ...shapeGradRules,
  ...convGradRules,
  ...poolGradRules,
  ...resizeGradRules,
  ...normalizationGradRules,
]);

/** Ops whose outputs carry no gradient (integer/boolean results or shape plumbing). */
const NON_DIFFERENTIABLE = new Set(['Shape', 'Gather', 'ReduceProd', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or', 'ConstantOfShape', 'Sign', 'Floor']);

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

const isFloat = (v: Value) => v.dtype === 'float32' || v.dtype === 'float64';

export function hasGradRule(op: string): boolean {
  return RULES.has(op);
}

/**
 * Reverse-mode differentiation of scalar `loss` with respect to `wrt`, appending the gradient graph to
 * `g`. Returns each wrt value's gradient, of exactly that value's shape. Fan-out is handled by summing
 * all contributions to a value (one Sum node, which also broadcasts partial gradients).
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
    const node = forward[k]!;
    if (!node.outputs.some((o) => contributions.has(o))) continue;
    const inputs = node.inputs.map((i) => (i ? g.value(i) : null));
    const needs = inputs.map((v) => v !== null && dependent.has(v.name) && isFloat(v));
    if (!needs.some(Boolean)) continue;
    const rule = RULES.get(node.op);
    if (!rule) throw new GraphError(`no gradient rule for op ${node.op} (node ${node.name})`);
    const outputs = node.outputs.map((o) => g.value(o));
    const gradOutputs = node.outputs.map((o) => total(o));
    const gradInputs = rule(ctx, node, inputs, outputs, gradOutputs, needs);
    gradInputs.forEach((gi, i) => {
      if (gi && needs[i]) push(inputs[i]!.name, gi);
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
