import { makeTensor } from '../builder.ts';
import type { Value } from '../types.ts';
import { GraphError } from '../types.ts';
import type { GradRule } from './rule.ts';

function strAttr(a: { kind: string; value?: unknown } | undefined, dflt: string): string {
  return a && a.kind === 'string' ? (a.value as string) : dflt;
}

/**
 * The 1-D interpolation matrix A [outLen, inLen] of ONNX Resize along one axis (out = A @ in), from
 * the operator's coordinate transformation and mode formulas.
 */
export function resizeMatrix1d(inLen: number, outLen: number, scale: number, mode: string, ctm: string, nearestMode: string): Float64Array {
  const a = new Float64Array(outLen * inLen);
  for (let o = 0; o < outLen; o++) {
    let x: number;
    switch (ctm) {
      case 'half_pixel':
        x = (o + 0.5) / scale - 0.5;
        break;
      case 'pytorch_half_pixel':
        x = outLen > 1 ? (o + 0.5) / scale - 0.5 : 0;
        break;
      case 'align_corners':
        x = outLen > 1 ? (o * (inLen - 1)) / (outLen - 1) : 0;
        break;
      case 'asymmetric':
        x = o / scale;
        break;
      default:
        throw new GraphError(`Resize gradient: coordinate_transformation_mode '${ctm}' is not supported`);
    }
    if (mode === 'nearest') {
      let i: number;
      const f = Math.floor(x);
      switch (nearestMode) {
        case 'floor':
          i = f;
          break;
        case 'ceil':
          i = Math.ceil(x);
          break;
        case 'round_prefer_ceil':
          i = Math.round(x);
          break;
        case 'round_prefer_floor':
          i = x - f === 0.5 ? f : Math.round(x);
          break;
        default:
          throw new GraphError(`Resize gradient: nearest_mode '${nearestMode}' is not supported`);
      }
      i = Math.min(Math.max(i, 0), inLen - 1);
      a[o * inLen + i] = 1;
    } else if (mode === 'linear') {
      const xc = Math.min(Math.max(x, 0), inLen - 1);
      const i0 = Math.floor(xc);
      const i1 = Math.min(i0 + 1, inLen - 1);
      const w1 = xc - i0;
      a[o * inLen + i0] += 1 - w1;
      a[o * inLen + i1] += w1;
    } else {
      throw new GraphError(`Resize gradient: mode '${mode}' is not supported`);
    }
  }
  return a;
}

/** True when A is plain integer replication (out o reads in floor(o / s)), whose adjoint is a block sum. */
function isReplication(a: Float64Array, inLen: number, outLen: number): number | null {
  if (outLen % inLen !== 0) return null;
  const s = outLen / inLen;
  for (let o = 0; o < outLen; o++) {
    for (let i = 0; i < inLen; i++) if (a[o * inLen + i] !== (i === Math.floor(o / s) ? 1 : 0)) return null;
  }
  return s;
}

/**
 * Resize over the two trailing (spatial) axes of NCHW is separable: y = A_h x A_w^T per image and
 * channel, so dx = A_h^T dy A_w. Integer nearest replication uses a reshape + block ReduceSum instead
 * of the two MatMuls.
 */
const resizeRule: GradRule = ([gyIn], node, c) => {
  const g = c.g;
  const [x, , scalesV, sizesV] = node.inputs;
  const [y] = node.outputs;
  if (!node.needs[0]) return [null, null, null, null];
  if (x!.shape.length !== 4) throw new GraphError('Resize gradient: only NCHW inputs are supported');
  const gy = c.materialize(gyIn!, y!);
  const mode = strAttr(node.attrs['mode'], 'nearest');
  const ctm = strAttr(node.attrs['coordinate_transformation_mode'], 'half_pixel');
  const nearestMode = strAttr(node.attrs['nearest_mode'], 'round_prefer_floor');
  const [ch, h, w] = x!.shape.slice(1);
  const [ho, wo] = y!.shape.slice(2);
  if (typeof h !== 'number' || typeof w !== 'number' || typeof ho !== 'number' || typeof wo !== 'number' || typeof ch !== 'number') {
    throw new GraphError('Resize gradient: channel and spatial dims must be static');
  }
  if (y!.shape[1] !== ch) throw new GraphError('Resize gradient: only spatial resizing is supported');
  let scales: number[];
  if (scalesV) scales = Array.from(g.constValue(scalesV.name)!.data as Float32Array, Number);
  else if (sizesV) scales = [1, 1, ho / h, wo / w];
  else throw new GraphError('Resize gradient: scales or sizes must be given');
  const ah = resizeMatrix1d(h, ho, scales[2]!, mode, ctm, nearestMode);
  const aw = resizeMatrix1d(w, wo, scales[3]!, mode, ctm, nearestMode);
  const sh = isReplication(ah, h, ho);
  const sw = isReplication(aw, w, wo);
  if (sh !== null && sw !== null) {
    const blocks = g.reshape(gy, [0, ch, h, sh, w, sw]);
    return [g.reshape(g.reduceSum(blocks, [3, 5], false), [0, ch, h, w]), null, null, null];
  }
  const toT = (a: Float64Array, rows: number, cols: number, transpose: boolean): Value => {
    const data = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) data[transpose ? k * rows + r : r * cols + k] = a[r * cols + k]!;
    return g.constant(makeTensor(x!.dtype, transpose ? [cols, rows] : [rows, cols], data), 'resize_adjoint');
  };
  const t1 = g.matmul(gy, toT(aw, wo, w, false)); // [N, C, Ho, W]
  const gx = g.matmul(toT(ah, ho, h, true), t1); // [H, Ho] @ [N, C, Ho, W] -> [N, C, H, W]
  return [gx, null, null, null];
};

export const resizeGradRules: [string, GradRule][] = [['Resize', resizeRule]];
