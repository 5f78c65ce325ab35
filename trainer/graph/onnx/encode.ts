import { endianness } from 'node:os';
import Long from 'long';
import type { Graph } from '../builder.ts';
import { typedArrayFor } from '../builder.ts';
import type { Attr, DType, Shape, TensorArray, TensorData } from '../types.ts';
import { GraphError } from '../types.ts';
import { IR_VERSION, ModelProto, OnnxAttributeType, OnnxDataType } from './schema.ts';

const ONNX_DTYPE: Record<DType, number> = {
  float32: OnnxDataType.FLOAT,
  float64: OnnxDataType.DOUBLE,
  int64: OnnxDataType.INT64,
  int32: OnnxDataType.INT32,
  bool: OnnxDataType.BOOL,
  uint8: OnnxDataType.UINT8,
};
const DTYPE_OF: Record<number, DType> = Object.fromEntries(Object.entries(ONNX_DTYPE).map(([k, v]) => [v, k as DType]));

export function onnxDataType(d: DType): number {
  return ONNX_DTYPE[d];
}

// raw_data is little-endian by spec; typed arrays use host order, so refuse to silently write garbage.
if (endianness() !== 'LE') throw new Error('ONNX emission assumes a little-endian host');

function rawBytes(a: TensorArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function tensorProto(name: string, t: TensorData): Record<string, unknown> {
  return { name, dims: t.dims.map((d) => d), data_type: ONNX_DTYPE[t.dtype], raw_data: rawBytes(t.data) };
}

function valueInfo(name: string, dtype: DType, shape: Shape): Record<string, unknown> {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: ONNX_DTYPE[dtype],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

function attributeProto(name: string, a: Attr): Record<string, unknown> {
  switch (a.kind) {
    case 'int':
      return { name, type: OnnxAttributeType.INT, i: a.value };
    case 'float':
      return { name, type: OnnxAttributeType.FLOAT, f: a.value };
    case 'ints':
      return { name, type: OnnxAttributeType.INTS, ints: [...a.value] };
    case 'floats':
      return { name, type: OnnxAttributeType.FLOATS, floats: [...a.value] };
    case 'string':
      return { name, type: OnnxAttributeType.STRING, s: new TextEncoder().encode(a.value) };
    case 'tensor':
      return { name, type: OnnxAttributeType.TENSOR, t: tensorProto('', a.value) };
  }
}

export interface EncodeOptions {
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Record<string, string>;
  /** Also write value_info for every intermediate value (useful for viewers; ORT does its own inference). */
  valueInfo?: boolean;
}

/** Serialises a builder graph to an ONNX ModelProto (opset = graph.opset, default domain). */
export function encodeModel(g: Graph, opts: EncodeOptions = {}): Uint8Array {
  for (const o of g.outputs) if (!g.values.has(o)) throw new GraphError(`output '${o}' is not a value of the graph`);
  const graphInputs = new Set(g.inputs);
  const intermediate = opts.valueInfo
    ? [...g.values.values()].filter((v) => !graphInputs.has(v.name) && !g.initializers.has(v.name) && !g.outputs.includes(v.name))
    : [];
  const model = {
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: g.opset }],
    producer_name: opts.producerName ?? 'unet-trainer',
    producer_version: opts.producerVersion ?? '0.1.0',
    doc_string: opts.docString ?? '',
    metadata_props: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: g.name,
      node: g.nodes.map((n) => ({
        name: n.name,
        op_type: n.op,
        domain: '',
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs).map(([k, a]) => attributeProto(k, a)),
      })),
      initializer: [...g.initializers.entries()].map(([name, t]) => tensorProto(name, t)),
      input: g.inputs.map((name) => {
        const v = g.value(name);
        return valueInfo(name, v.dtype, v.shape);
      }),
      output: g.outputs.map((name) => {
        const v = g.value(name);
        return valueInfo(name, v.dtype, v.shape);
      }),
      value_info: intermediate.map((v) => valueInfo(v.name, v.dtype, v.shape)),
    },
  };
  const err = ModelProto.verify(model);
  if (err) throw new GraphError(`invalid ModelProto: ${err}`);
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

// ---- reading back (tests, checkpoint-free inspection of exported models) ----

export interface DecodedModel {
  irVersion: number;
  opset: number;
  inputs: { name: string; dtype: DType; shape: (number | string)[] }[];
  outputs: { name: string; dtype: DType; shape: (number | string)[] }[];
  nodes: { op: string; inputs: string[]; outputs: string[] }[];
  initializers: Map<string, TensorData>;
  metadata: Record<string, string>;
}

function toNum(v: unknown): number {
  if (typeof v === 'number') return v;
  if (Long.isLong(v)) return (v as Long).toNumber();
  return Number(v);
}

function decodeTensor(t: Record<string, any>): TensorData {
  const dtype = DTYPE_OF[t.data_type as number];
  if (!dtype) throw new GraphError(`tensor '${t.name}': unsupported data_type ${t.data_type}`);
  const dims = ((t.dims ?? []) as unknown[]).map(toNum);
  const n = dims.reduce((a, b) => a * b, 1);
  const out = typedArrayFor(dtype, n);
  const raw = t.raw_data as Uint8Array | undefined;
  if (raw && raw.length) {
    new Uint8Array(out.buffer).set(raw.subarray(0, out.byteLength));
  } else if (dtype === 'float32') (out as Float32Array).set(t.float_data ?? []);
  else if (dtype === 'float64') (out as Float64Array).set(t.double_data ?? []);
  else if (dtype === 'int64') ((t.int64_data ?? []) as unknown[]).forEach((v, i) => ((out as BigInt64Array)[i] = BigInt(toNum(v))));
  else (out as Int32Array | Uint8Array).set(t.int32_data ?? []);
  return { dtype, dims, data: out };
}

export function decodeModel(bytes: Uint8Array): DecodedModel {
  const m = ModelProto.toObject(ModelProto.decode(bytes), { defaults: false }) as Record<string, any>;
  const g = (m.graph ?? {}) as Record<string, any>;
  const vi = (v: Record<string, any>) => ({
    name: v.name as string,
    dtype: DTYPE_OF[v.type?.tensor_type?.elem_type as number]!,
    shape: ((v.type?.tensor_type?.shape?.dim ?? []) as Record<string, unknown>[]).map((d) =>
      d.dim_param !== undefined ? (d.dim_param as string) : toNum(d.dim_value),
    ),
  });
  const initializers = new Map<string, TensorData>();
  for (const t of (g.initializer ?? []) as Record<string, any>[]) initializers.set(t.name as string, decodeTensor(t));
  return {
    irVersion: toNum(m.ir_version),
    opset: toNum(((m.opset_import ?? []) as Record<string, unknown>[]).find((o) => !o.domain)?.version ?? 0),
    inputs: ((g.input ?? []) as Record<string, any>[]).map(vi),
    outputs: ((g.output ?? []) as Record<string, any>[]).map(vi),
    nodes: ((g.node ?? []) as Record<string, any>[]).map((n) => ({ op: n.op_type as string, inputs: n.input ?? [], outputs: n.output ?? [] })),
    initializers,
    metadata: Object.fromEntries(((m.metadata_props ?? []) as { key: string; value: string }[]).map((e) => [e.key, e.value])),
  };
}
