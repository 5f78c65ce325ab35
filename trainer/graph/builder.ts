import { inferOutputs } from './shape-inference.ts';
import { attr, GraphError } from './types.ts';
import type { Attrs, ConstantSource, DType, Node, Shape, TensorArray, TensorData, Value } from './types.ts';

// The shared types live in types.ts; re-exported so graph users import one module.
export { attr, GraphError } from './types.ts';
export type { Attr, Attrs, ConstantSource, DType, Dim, Node, Shape, TensorArray, TensorData, Value } from './types.ts';

export function tensorSize(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function typedArrayFor(dtype: DType, n: number): TensorArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'bool':
    case 'uint8':
      return new Uint8Array(n);
  }
}

export function makeTensor(dtype: DType, dims: readonly number[], values: ArrayLike<number> | TensorArray): TensorData {
  const n = tensorSize(dims);
  if (values.length !== n) throw new GraphError(`tensor of dims [${dims}] needs ${n} values, got ${values.length}`);
  const data = typedArrayFor(dtype, n);
  if (data instanceof BigInt64Array) {
    for (let i = 0; i < n; i++) data[i] = BigInt((values as ArrayLike<number | bigint>)[i]!);
  } else {
    for (let i = 0; i < n; i++) data[i] = Number((values as ArrayLike<number | bigint>)[i]!);
  }
  return { dtype, dims: [...dims], data };
}

/**
 * A mutable ONNX graph under construction: values carry dtype and (possibly symbolic) shape, every
 * node's outputs are shape-inferred when it is added, so graph code and gradient rules can rely on
 * shapes without running anything.
 */
export class Graph implements ConstantSource {
  readonly nodes: Node[] = [];
  readonly values = new Map<string, Value>();
  readonly initializers = new Map<string, TensorData>();
  readonly inputs: string[] = [];
  readonly outputs: string[] = [];
  private readonly used = new Set<string>();
  private readonly constCache = new Map<string, Value>();
  private counter = 0;

  constructor(
    readonly name = 'graph',
    readonly opset = 17,
  ) {}

  /** A name with this prefix that is not used yet (not reserved: registering it claims it). */
  uniqueName(prefix: string): string {
    let n = prefix;
    while (this.used.has(n)) n = `${prefix}_${++this.counter}`;
    return n;
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new GraphError(`name '${name}' is already used in graph '${this.name}'`);
    this.used.add(name);
    return name;
  }

  value(name: string): Value {
    const v = this.values.get(name);
    if (!v) throw new GraphError(`no value named '${name}'`);
    return v;
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    const v: Value = { name: this.claim(name), dtype, shape: [...shape] };
    this.values.set(name, v);
    this.inputs.push(name);
    return v;
  }

  initializer(name: string, t: TensorData): Value {
    const v: Value = { name: this.claim(name), dtype: t.dtype, shape: [...t.dims] };
    if (t.data.length !== tensorSize(t.dims)) throw new GraphError(`initializer '${name}': data length ${t.data.length} != dims [${t.dims}]`);
    this.values.set(name, v);
    this.initializers.set(name, t);
    return v;
  }

  /** A constant tensor stored as an initializer; identical small constants are shared. */
  constant(t: TensorData, prefix = 'const'): Value {
    const key = t.data.length <= 16 ? `${t.dtype}|${t.dims.join(',')}|${Array.from(t.data as ArrayLike<number | bigint>).join(',')}` : undefined;
    if (key !== undefined) {
      const hit = this.constCache.get(key);
      if (hit) return hit;
    }
    const v = this.initializer(this.uniqueName(prefix), t);
    if (key !== undefined) this.constCache.set(key, v);
    return v;
  }

  scalar(x: number, dtype: DType = 'float32'): Value {
    return this.constant(makeTensor(dtype, [], [x]), 'scalar');
  }

  /** A scalar of the same element type as `like` (ONNX binary ops do not promote types). */
  scalarLike(x: number, like: Value): Value {
    return this.scalar(x, like.dtype);
  }

  int64s(values: readonly number[]): Value {
    return this.constant(makeTensor('int64', [values.length], values), 'ints');
  }

  /** The value of a constant (initializer) input, when it is one: shape inference reads Reshape/Slice arguments here. */
  constValue(name: string): TensorData | undefined {
    return this.initializers.get(name);
  }

  /**
   * Adds a node. `outputs` is a count or explicit names; `shapes` overrides inference for outputs whose
   * shape depends on runtime values (e.g. ConstantOfShape(Shape(x))).
   */
  op(
    op: string,
    inputs: readonly (Value | null | undefined)[],
    attrs: Attrs = {},
    opts: { outputs?: number | readonly string[]; shapes?: readonly { dtype: DType; shape: Shape }[] } = {},
  ): Value[] {
    for (const i of inputs) if (i && !this.values.has(i.name)) throw new GraphError(`${op}: input '${i.name}' is not in this graph`);
    const nOut = typeof opts.outputs === 'number' ? opts.outputs : (opts.outputs?.length ?? 1);
    const types = opts.shapes ?? inferOutputs(this, op, inputs.map((i) => i ?? null), attrs, nOut);
    const outNames = Array.isArray(opts.outputs)
      ? (opts.outputs as readonly string[]).map((n) => this.claim(n))
      : Array.from({ length: nOut }, () => this.claim(this.uniqueName(op.toLowerCase())));
    const node: Node = { op, name: this.claim(this.uniqueName(`n_${op}`)), inputs: inputs.map((i) => i?.name ?? ''), outputs: outNames, attrs };
    this.nodes.push(node);
    return outNames.map((name, k) => {
      const t = types[k];
      if (!t) throw new GraphError(`${op}: no type for output ${k}`);
      const v: Value = { name, dtype: t.dtype, shape: [...t.shape] };
      this.values.set(name, v);
      return v;
    });
  }

  op1(op: string, inputs: readonly (Value | null | undefined)[], attrs: Attrs = {}, name?: string): Value {
    return this.op(op, inputs, attrs, name ? { outputs: [name] } : {})[0]!;
  }

  /** Gives an existing node one more output (e.g. MaxPool's Indices, wanted only by its gradient). */
  addNodeOutput(node: Node, dtype: DType, shape: Shape, prefix = 'extra'): Value {
    const name = this.claim(this.uniqueName(prefix));
    node.outputs.push(name);
    const v: Value = { name, dtype, shape: [...shape] };
    this.values.set(name, v);
    return v;
  }

  /** Marks a value as a graph output, renaming it first when `as` is given. */
  output(v: Value, as?: string): Value {
    let out = v;
    if (as !== undefined && as !== v.name) out = this.rename(v, as);
    if (!this.outputs.includes(out.name)) this.outputs.push(out.name);
    return out;
  }

  /** Renames a node-produced value everywhere (graph inputs and initializers keep their names). */
  rename(v: Value, to: string): Value {
    if (this.inputs.includes(v.name) || this.initializers.has(v.name)) {
      return this.op1('Identity', [v], {}, to);
    }
    this.claim(to);
    for (const n of this.nodes) {
      n.inputs = n.inputs.map((i) => (i === v.name ? to : i));
      n.outputs = n.outputs.map((o) => (o === v.name ? to : o));
    }
    const k = this.outputs.indexOf(v.name);
    if (k >= 0) this.outputs[k] = to;
    const nv: Value = { name: to, dtype: v.dtype, shape: v.shape };
    this.values.delete(v.name);
    this.values.set(to, nv);
    return nv;
  }

  // ---- sugar for the ops the model, losses and gradient rules use ----
  add(a: Value, b: Value): Value {
    return this.op1('Add', [a, b]);
  }
  sub(a: Value, b: Value): Value {
    return this.op1('Sub', [a, b]);
  }
  mul(a: Value, b: Value): Value {
    return this.op1('Mul', [a, b]);
  }
  div(a: Value, b: Value): Value {
    return this.op1('Div', [a, b]);
  }
  neg(a: Value): Value {
    return this.op1('Neg', [a]);
  }
  relu(a: Value): Value {
    return this.op1('Relu', [a]);
  }
  sigmoid(a: Value): Value {
    return this.op1('Sigmoid', [a]);
  }
  exp(a: Value): Value {
    return this.op1('Exp', [a]);
  }
  log(a: Value): Value {
    return this.op1('Log', [a]);
  }
  abs(a: Value): Value {
    return this.op1('Abs', [a]);
  }
  sqrt(a: Value): Value {
    return this.op1('Sqrt', [a]);
  }
  pow(a: Value, b: Value): Value {
    return this.op1('Pow', [a, b]);
  }
  clip(a: Value, min?: number, max?: number): Value {
    return this.op1('Clip', [a, min === undefined ? null : this.scalarLike(min, a), max === undefined ? null : this.scalarLike(max, a)]);
  }
  /** Softmax along one axis (opset 13+ semantics; the channel axis 1 of N x C x H x W logits by default). */
  softmax(a: Value, axis = 1): Value {
    return this.op1('Softmax', [a], { axis: attr.int(axis) });
  }
  /** log(softmax(a)) along one axis, computed stably by the runtime (use it for cross-entropy). */
  logSoftmax(a: Value, axis = 1): Value {
    return this.op1('LogSoftmax', [a], { axis: attr.int(axis) });
  }
  /** Index of the largest element along `axis` (int64; first on ties); not differentiable: inference only. */
  argMax(a: Value, axis = 1, keepdims = true): Value {
    return this.op1('ArgMax', [a], { axis: attr.int(axis), keepdims: attr.int(keepdims ? 1 : 0) });
  }
  reduceSum(a: Value, axes?: readonly number[], keepdims = true): Value {
    return this.op1('ReduceSum', [a, axes ? this.int64s(axes) : null], { keepdims: attr.int(keepdims ? 1 : 0) });
  }
  /** ReduceMean takes `axes` as an attribute up to opset 17 and as an input from 18. */
  reduceMean(a: Value, axes?: readonly number[], keepdims = true): Value {
    if (this.opset >= 18) return this.op1('ReduceMean', [a, axes ? this.int64s(axes) : null], { keepdims: attr.int(keepdims ? 1 : 0) });
    return this.op1('ReduceMean', [a], { keepdims: attr.int(keepdims ? 1 : 0), ...(axes ? { axes: attr.ints(axes) } : {}) });
  }
  /** Sum of squares without materialising x*x (axes attribute up to opset 17, input from 18). */
  reduceSumSquare(a: Value, axes?: readonly number[], keepdims = true): Value {
    if (this.opset >= 18) return this.op1('ReduceSumSquare', [a, axes ? this.int64s(axes) : null], { keepdims: attr.int(keepdims ? 1 : 0) });
    return this.op1('ReduceSumSquare', [a], { keepdims: attr.int(keepdims ? 1 : 0), ...(axes ? { axes: attr.ints(axes) } : {}) });
  }
  reshape(a: Value, shape: readonly number[]): Value {
    return this.op1('Reshape', [a, this.int64s(shape)]);
  }
  transpose(a: Value, perm: readonly number[]): Value {
    return this.op1('Transpose', [a], { perm: attr.ints(perm) });
  }
  concat(vs: readonly Value[], axis: number): Value {
    return this.op1('Concat', vs, { axis: attr.int(axis) });
  }
  slice(a: Value, starts: readonly number[], ends: readonly number[], axes: readonly number[], steps?: readonly number[]): Value {
    return this.op1('Slice', [a, this.int64s(starts), this.int64s(ends), this.int64s(axes), steps ? this.int64s(steps) : null]);
  }
  matmul(a: Value, b: Value): Value {
    return this.op1('MatMul', [a, b]);
  }
  /** Zeros with x's (possibly dynamic) shape and dtype. */
  zerosLike(x: Value): Value {
    const shape = this.op1('Shape', [x]);
    const zero = makeTensor(x.dtype, [1], [0]);
    return this.op('ConstantOfShape', [shape], { value: attr.tensor(zero) }, { shapes: [{ dtype: x.dtype, shape: x.shape }] })[0]!;
  }
}
