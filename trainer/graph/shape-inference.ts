import type { Attr, Attrs, ConstantSource, DType, Dim, Shape, Value } from './types.ts';
import { GraphError } from './types.ts';

/** Output element type and shape of a node, computed from its inputs and attributes. */
export interface OutputType {
  dtype: DType;
  shape: Shape;
}

function intAttr(attrs: Attrs, name: string, dflt: number): number {
  const a: Attr | undefined = attrs[name];
  if (!a) return dflt;
  if (a.kind !== 'int') throw new GraphError(`attribute ${name} must be an int`);
  return a.value;
}

function intsAttr(attrs: Attrs, name: string, dflt: readonly number[]): readonly number[] {
  const a = attrs[name];
  if (!a) return dflt;
  if (a.kind !== 'ints') throw new GraphError(`attribute ${name} must be ints`);
  return a.value;
}

function floatsConst(g: ConstantSource, v: Value | null, what: string): number[] {
  if (!v) throw new GraphError(`${what} is required`);
  const t = g.constValue(v.name);
  if (!t) throw new GraphError(`${what} must be a constant (initializer) for shape inference`);
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

function num(d: Dim, what: string): number {
  if (typeof d !== 'number') throw new GraphError(`${what} needs a static dimension, got '${d}'`);
  return d;
}

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new GraphError(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

export function broadcastShapes(...shapes: Shape[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const k = s.length - rank + i;
      if (k < 0) continue;
      const e = s[k]!;
      if (e === 1) continue;
      if (d === 1) d = e;
      else if (d !== e) {
        // A symbol against a size: the runtime must agree, so take the size.
        if (typeof d === 'string' && typeof e === 'number') d = e;
        else if (typeof d === 'number' && typeof e === 'number') {
          throw new GraphError(`shapes [${shapes.map((x) => x.join(',')).join('] [')}] do not broadcast`);
        }
      }
    }
    out.push(d);
  }
  return out;
}

function windowOut(inp: Dim, k: number, s: number, p0: number, p1: number, dil: number, ceil = false): Dim {
  if (typeof inp === 'string') return `${inp}_w`;
  const span = inp + p0 + p1 - dil * (k - 1) - 1;
  return (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
}

const SAME_SHAPE = new Set([
  'Relu', 'Sigmoid', 'Exp', 'Log', 'Neg', 'Abs', 'Sqrt', 'Reciprocal', 'Tanh', 'Softplus', 'Identity', 'Clip', 'Floor',
  'BatchNormalization', 'LeakyRelu', 'Sign',
]);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean']);
const COMPARE = new Set(['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor']);

const DTYPE_OF_ONNX: Record<number, DType> = { 1: 'float32', 2: 'uint8', 6: 'int32', 7: 'int64', 9: 'bool', 11: 'float64' };

export function inferOutputs(g: ConstantSource, op: string, inputs: readonly (Value | null)[], attrs: Attrs, nOut: number): OutputType[] {
  const x = inputs[0];
  if (!x) throw new GraphError(`${op}: first input is required`);
  const rank = x.shape.length;
  if (SAME_SHAPE.has(op)) {
    if (op === 'BatchNormalization' && nOut > 1) throw new GraphError('BatchNormalization: only the inference form (one output) is supported; training BN is built from primitives');
    return [{ dtype: x.dtype, shape: x.shape }];
  }
  if (BROADCAST.has(op)) return [{ dtype: x.dtype, shape: broadcastShapes(...inputs.map((i) => i!.shape)) }];
  if (COMPARE.has(op)) return [{ dtype: 'bool', shape: broadcastShapes(...inputs.map((i) => i!.shape)) }];
  switch (op) {
    case 'Not':
      return [{ dtype: 'bool', shape: x.shape }];
    case 'Softmax':
    case 'LogSoftmax':
      // Opset 13+: normalised along one axis (default -1), same shape out.
      if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new GraphError(`${op}: needs a float input, got ${x.dtype}`);
      normAxis(intAttr(attrs, 'axis', -1), rank);
      return [{ dtype: x.dtype, shape: x.shape }];
    case 'ArgMax': {
      const axis = normAxis(intAttr(attrs, 'axis', 0), rank);
      const keep = intAttr(attrs, 'keepdims', 1) === 1;
      return [{ dtype: 'int64', shape: keep ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis) }];
    }
    case 'Where':
      return [{ dtype: inputs[1]!.dtype, shape: broadcastShapes(x.shape, inputs[1]!.shape, inputs[2]!.shape) }];
    case 'Cast': {
      const to = intAttr(attrs, 'to', 0);
      const dtype = DTYPE_OF_ONNX[to];
      if (!dtype) throw new GraphError(`Cast: unsupported target type ${to}`);
      return [{ dtype, shape: x.shape }];
    }
    case 'Conv':
    case 'ConvTranspose': {
      const w = inputs[1]!;
      const sp = rank - 2;
      const k = intsAttr(attrs, 'kernel_shape', w.shape.slice(2).map((d) => num(d, `${op} kernel`)));
      const s = intsAttr(attrs, 'strides', Array(sp).fill(1));
      const dil = intsAttr(attrs, 'dilations', Array(sp).fill(1));
      const pads = intsAttr(attrs, 'pads', Array(2 * sp).fill(0));
      const group = intAttr(attrs, 'group', 1);
      if (attrs['auto_pad'] && attrs['auto_pad'].kind === 'string' && attrs['auto_pad'].value !== 'NOTSET') {
        throw new GraphError(`${op}: auto_pad is not supported, give explicit pads`);
      }
      if (op === 'Conv') {
        const spatial = x.shape.slice(2).map((d, i) => windowOut(d, k[i]!, s[i]!, pads[i]!, pads[i + sp]!, dil[i]!));
        return [{ dtype: x.dtype, shape: [x.shape[0]!, w.shape[0]!, ...spatial] }];
      }
      if (attrs['output_shape']) throw new GraphError('ConvTranspose: give output_padding, not output_shape');
      const op_ = intsAttr(attrs, 'output_padding', Array(sp).fill(0));
      const spatial = x.shape.slice(2).map((d, i) =>
        typeof d === 'string' ? `${d}_t` : s[i]! * (d - 1) + op_[i]! + (k[i]! - 1) * dil[i]! + 1 - pads[i]! - pads[i + sp]!,
      );
      return [{ dtype: x.dtype, shape: [x.shape[0]!, typeof w.shape[1] === 'number' ? w.shape[1] * group : w.shape[1]!, ...spatial] }];
    }
    case 'MaxPool':
    case 'AveragePool': {
      const sp = rank - 2;
      const k = intsAttr(attrs, 'kernel_shape', []);
      if (k.length !== sp) throw new GraphError(`${op}: kernel_shape must have ${sp} entries`);
      const s = intsAttr(attrs, 'strides', Array(sp).fill(1));
      const pads = intsAttr(attrs, 'pads', Array(2 * sp).fill(0));
      const dil = intsAttr(attrs, 'dilations', Array(sp).fill(1));
      const ceil = intAttr(attrs, 'ceil_mode', 0) === 1;
      const spatial = x.shape.slice(2).map((d, i) => windowOut(d, k[i]!, s[i]!, pads[i]!, pads[i + sp]!, dil[i]!, ceil));
      const shape = [x.shape[0]!, x.shape[1]!, ...spatial];
      const out: OutputType[] = [{ dtype: x.dtype, shape }];
      if (nOut > 1) out.push({ dtype: 'int64', shape });
      return out;
    }
    case 'Resize': {
      const scales = inputs[2];
      const sizes = inputs[3];
      if (sizes) return [{ dtype: x.dtype, shape: floatsConst(g, sizes, 'Resize sizes') }];
      const sc = floatsConst(g, scales ?? null, 'Resize scales');
      return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (sc[i] === 1 ? d : Math.floor(num(d, 'Resize') * sc[i]!))) }];
    }
    case 'Concat': {
      const axis = normAxis(intAttr(attrs, 'axis', 0), rank);
      const shape = [...x.shape];
      let total: Dim = 0;
      for (const i of inputs) {
        const d = i!.shape[axis]!;
        total = typeof total === 'number' && typeof d === 'number' ? total + d : `${total}+${d}`;
      }
      shape[axis] = total;
      return [{ dtype: x.dtype, shape }];
    }
    case 'Split': {
      const axis = normAxis(intAttr(attrs, 'axis', 0), rank);
      const split = inputs[1] ? floatsConst(g, inputs[1], 'Split sizes') : Array(nOut).fill(num(x.shape[axis]!, 'Split') / nOut);
      return split.map((n) => {
        const shape = [...x.shape];
        shape[axis] = n;
        return { dtype: x.dtype, shape };
      });
    }
    case 'Slice': {
      const starts = floatsConst(g, inputs[1]!, 'Slice starts');
      const ends = floatsConst(g, inputs[2]!, 'Slice ends');
      const axes = inputs[3] ? floatsConst(g, inputs[3], 'Slice axes') : starts.map((_, i) => i);
      const steps = inputs[4] ? floatsConst(g, inputs[4], 'Slice steps') : starts.map(() => 1);
      const shape = [...x.shape];
      axes.forEach((a0, i) => {
        const a = normAxis(a0, rank);
        const dim = num(x.shape[a]!, 'Slice');
        const step = steps[i]!;
        const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
        let st = starts[i]! < 0 ? starts[i]! + dim : starts[i]!;
        let en = ends[i]! < 0 ? ends[i]! + dim : ends[i]!;
        if (step > 0) {
          st = clamp(st, 0, dim);
          en = clamp(en, 0, dim);
          shape[a] = Math.max(0, Math.ceil((en - st) / step));
        } else {
          st = clamp(st, 0, dim - 1);
          en = clamp(en, -1, dim - 1);
          shape[a] = Math.max(0, Math.ceil((st - en) / -step));
        }
      });
      return [{ dtype: x.dtype, shape }];
    }
    case 'Pad': {
      const pads = floatsConst(g, inputs[1]!, 'Pad pads');
      const axes = inputs[3] ? floatsConst(g, inputs[3], 'Pad axes').map((a) => normAxis(a, rank)) : x.shape.map((_, i) => i);
      const shape = [...x.shape];
      axes.forEach((a, i) => {
        const d = shape[a]!;
        shape[a] = typeof d === 'number' ? d + pads[i]! + pads[i + axes.length]! : pads[i] === 0 && pads[i + axes.length] === 0 ? d : `${d}_p`;
      });
      return [{ dtype: x.dtype, shape }];
    }
    case 'Reshape': {
      const target = floatsConst(g, inputs[1]!, 'Reshape shape');
      const allowZero = intAttr(attrs, 'allowzero', 0) === 1;
      const out: Dim[] = target.map((t, i) => (t === 0 && !allowZero ? x.shape[i]! : t));
      const minus = out.indexOf(-1);
      if (minus >= 0) {
        // Static sizes divide out; symbols cancel when the same symbols remain on both sides.
        let inNum = 1;
        const inSym: string[] = [];
        for (const d of x.shape) typeof d === 'number' ? (inNum *= d) : inSym.push(d);
        let outNum = 1;
        const outSym: string[] = [];
        out.forEach((d, i) => {
          if (i === minus) return;
          typeof d === 'number' ? (outNum *= d) : outSym.push(d);
        });
        const rest = inSym.filter((s) => {
          const k = outSym.indexOf(s);
          if (k >= 0) {
            outSym.splice(k, 1);
            return false;
          }
          return true;
        });
        if (outSym.length) throw new GraphError(`Reshape: cannot infer -1 from [${x.shape}] -> [${target}]`);
        const n = inNum / outNum;
        out[minus] = rest.length ? (n === 1 && rest.length === 1 ? rest[0]! : `${rest.join('*')}*${n}`) : n;
      }
      return [{ dtype: x.dtype, shape: out }];
    }
    case 'Flatten': {
      const axis = normAxis(intAttr(attrs, 'axis', 1), rank + 1);
      const prod = (ds: readonly Dim[]): Dim =>
        ds.every((d) => typeof d === 'number') ? (ds as number[]).reduce((a, b) => a * b, 1) : ds.join('*');
      return [{ dtype: x.dtype, shape: [prod(x.shape.slice(0, axis)), prod(x.shape.slice(axis))] }];
    }
    case 'Transpose': {
      const perm = intsAttr(attrs, 'perm', x.shape.map((_, i) => rank - 1 - i));
      return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) }];
    }
    case 'Unsqueeze': {
      const axes = floatsConst(g, inputs[1]!, 'Unsqueeze axes');
      const outRank = rank + axes.length;
      const norm = axes.map((a) => normAxis(a, outRank));
      const out: Dim[] = [];
      let k = 0;
      for (let i = 0; i < outRank; i++) out.push(norm.includes(i) ? 1 : x.shape[k++]!);
      return [{ dtype: x.dtype, shape: out }];
    }
    case 'Squeeze': {
      const axes = inputs[1] ? floatsConst(g, inputs[1], 'Squeeze axes').map((a) => normAxis(a, rank)) : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
      return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !axes.includes(i)) }];
    }
    case 'ReduceSum':
    case 'ReduceMean':
    case 'ReduceMax':
    case 'ReduceSumSquare': {
      const keep = intAttr(attrs, 'keepdims', 1) === 1;
      const axesIn = op === 'ReduceSum' || g.opset >= 18 ? (inputs[1] ? floatsConst(g, inputs[1], `${op} axes`) : null) : intsAttr(attrs, 'axes', []);
      const axes = axesIn && axesIn.length ? axesIn.map((a) => normAxis(a, rank)) : x.shape.map((_, i) => i);
      const shape = keep ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
      return [{ dtype: x.dtype, shape }];
    }
    case 'MatMul': {
      const b = inputs[1]!;
      if (rank < 2 || b.shape.length < 2) throw new GraphError('MatMul: only rank >= 2 operands are supported');
      const batch = broadcastShapes(x.shape.slice(0, -2), b.shape.slice(0, -2));
      return [{ dtype: x.dtype, shape: [...batch, x.shape[rank - 2]!, b.shape[b.shape.length - 1]!] }];
    }
    case 'Expand': {
      const target = floatsConst(g, inputs[1]!, 'Expand shape');
      return [{ dtype: x.dtype, shape: broadcastShapes(x.shape, target) }];
    }
    case 'Shape':
      return [{ dtype: 'int64', shape: [rank] }];
    case 'ConstantOfShape': {
      const dims = floatsConst(g, x, 'ConstantOfShape shape');
      const v = attrs['value'];
      return [{ dtype: v && v.kind === 'tensor' ? v.value.dtype : 'float32', shape: dims }];
    }
    case 'ScatterElements':
      return [{ dtype: x.dtype, shape: x.shape }];
    case 'GatherElements':
      return [{ dtype: x.dtype, shape: inputs[1]!.shape }];
    case 'Gather': {
      const axis = normAxis(intAttr(attrs, 'axis', 0), rank);
      const idx = inputs[1]!;
      return [{ dtype: x.dtype, shape: [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)] }];
    }
    default:
      throw new GraphError(`no shape inference for op ${op}`);
  }
}
