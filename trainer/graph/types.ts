/**
 * The graph's shared vocabulary: element types, (symbolic) shapes, tensors, values, attributes,
 * nodes and the error every graph module throws. It imports nothing, so `builder.ts`,
 * `shape-inference.ts`, the gradient rules and the ONNX encoder all depend on it and not on
 * each other.
 */

/** Element types the builder knows; ONNX names them FLOAT, DOUBLE, INT64, INT32, BOOL, UINT8. */
export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'uint8';
/** A dimension: a size, or a symbol (ONNX dim_param) for a dynamic one such as the batch. */
export type Dim = number | string;
export type Shape = readonly Dim[];
export type TensorArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export interface TensorData {
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly data: TensorArray;
}

/** A named value of the graph (input, initializer or node output) with its dtype and shape. */
export interface Value {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Shape;
}

export type Attr =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: TensorData };

/** Typed attribute constructors: ONNX distinguishes int from float, JS numbers do not. */
export const attr = {
  int: (value: number): Attr => ({ kind: 'int', value }),
  float: (value: number): Attr => ({ kind: 'float', value }),
  ints: (value: readonly number[]): Attr => ({ kind: 'ints', value }),
  floats: (value: readonly number[]): Attr => ({ kind: 'floats', value }),
  string: (value: string): Attr => ({ kind: 'string', value }),
  tensor: (value: TensorData): Attr => ({ kind: 'tensor', value }),
};
export type Attrs = Readonly<Record<string, Attr>>;

export interface Node {
  readonly op: string;
  readonly name: string;
  /** '' marks an omitted optional input, as in ONNX. */
  inputs: string[];
  outputs: string[];
  readonly attrs: Attrs;
}

/** What shape inference reads from the graph besides a node's inputs: the opset and constant inputs. */
export interface ConstantSource {
  readonly opset: number;
  /** The value of a constant (initializer) input, when it is one. */
  constValue(name: string): TensorData | undefined;
}

export class GraphError extends Error {
  override name = 'GraphError';
}
