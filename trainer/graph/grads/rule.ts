import type { Graph } from '../builder.ts';
import type { Attrs, Node, Shape, Value } from '../types.ts';
import { attr } from '../types.ts';

/**
 * What a gradient rule is and what it may use. The walker (`autodiff.ts`) imports the rule files,
 * the rule files import this one, so there is no cycle between the walker and its rules.
 */

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
 * The node being differentiated, with its inputs and outputs resolved to values.
 * `needs[i]` says whether input i wants a gradient: a rule may skip work for the others (the walker
 * drops whatever it returns for them).
 */
export interface GradNode {
  readonly op: string;
  readonly name: string;
  readonly attrs: Attrs;
  /** One per input; null for an omitted optional input. */
  readonly inputs: readonly (Value | null)[];
  readonly outputs: readonly Value[];
  readonly needs: readonly boolean[];
  /** The graph node itself, for rules that extend it (MaxPool adds its Indices output). */
  readonly graphNode: Node;
}

/**
 * A gradient rule: given the gradient of each output (`gradOut[k]`, null when none reaches output k)
 * it returns one gradient (or null) per input. A returned gradient may have the (broadcast) output
 * shape or anything broadcastable to the input: the walker sums it over broadcast axes down to the
 * input's shape, once, for every rule. Gradients reaching a rule may likewise be broadcastable to
 * their output rather than equal to it (a ReduceMean's gradient is [1,C,1,1]); elementwise math
 * broadcasts for free, rules that need the exact shape call `ctx.materialize`.
 */
export type GradRule = (gradOut: readonly (Value | null)[], node: GradNode, ctx: GradContext) => (Value | null)[];

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The graph being extended, the formulation options, and shape helpers shared by the rules. */
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
