import { makeTensor } from '../builder.ts';
import type { Attrs, Value } from '../types.ts';
import { attr, GraphError } from '../types.ts';
import type { GradContext, GradRule } from './rule.ts';

interface ConvGeometry {
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
}

function geometry(node: { op: string; attrs: Attrs }, w: Value): ConvGeometry {
  const ints = (name: string, dflt: number[]) => {
    const a = node.attrs[name];
    return a && a.kind === 'ints' ? [...a.value] : dflt;
  };
  const sp = w.shape.length - 2;
  const kernel = ints(
    'kernel_shape',
    w.shape.slice(2).map((d) => {
      if (typeof d !== 'number') throw new GraphError(`${node.op}: kernel dims must be static`);
      return d;
    }),
  );
  const group = node.attrs['group'];
  if (group && group.kind === 'int' && group.value !== 1) throw new GraphError(`${node.op} gradient: group != 1 is not supported`);
  return { kernel, strides: ints('strides', Array(sp).fill(1)), pads: ints('pads', Array(2 * sp).fill(0)), dilations: ints('dilations', Array(sp).fill(1)) };
}

function staticDims(v: Value, from: number, what: string): number[] {
  return v.shape.slice(from).map((d) => {
    if (typeof d !== 'number') throw new GraphError(`${what}: spatial dims must be static`);
    return d;
  });
}

/**
 * dW[co, ci, i, j] = sum over n, a, b of gy[n, co, a, b] * xpad[n, ci, a*s + i*d, b*s + j*d] for a
 * 2-D convolution x [N, Ci, H, W] -> gy [N, Co, Ho, Wo]; returns [Co, Ci, kh, kw].
 *
 * 'conv': one Conv with the batch as the reduction channel (x and gy transposed to [C, N, ...]), gy as a
 * Ho x Wo kernel dilated by the forward stride; 'matmul': per kernel tap a strided Slice of the padded
 * input and a batched MatMul against gy, summed over the batch; 'im2col': the patches of all taps at
 * once from a depthwise Conv with one-hot kernels (group = Ci, same strides/pads/dilations), then one
 * batched MatMul against gy.
 */
export function convWeightGrad(c: GradContext, x: Value, gy: Value, geo: ConvGeometry, method: 'conv' | 'matmul' | 'im2col'): Value {
  const g = c.g;
  const [ci] = staticDims(x, 1, 'conv weight gradient');
  const [co, ho, wo] = staticDims(gy, 1, 'conv weight gradient') as [number, number, number];
  const [kh, kw] = geo.kernel as [number, number];
  const [sh, sw] = geo.strides as [number, number];
  const [dh, dw] = geo.dilations as [number, number];
  const [pt, pl, pb, pr] = geo.pads as [number, number, number, number];
  if (method === 'conv') {
    const xt = g.transpose(x, [1, 0, 2, 3]);
    const gyt = g.transpose(gy, [1, 0, 2, 3]);
    let r = g.op1('Conv', [xt, gyt], {
      kernel_shape: attr.ints([ho, wo]),
      strides: attr.ints([dh, dw]),
      dilations: attr.ints([sh, sw]),
      pads: attr.ints([pt, pl, pb, pr]),
    });
    if (r.shape[2] !== kh || r.shape[3] !== kw) r = g.slice(r, [0, 0], [kh, kw], [2, 3]);
    return g.transpose(r, [1, 0, 2, 3]);
  }
  const gySide = co < ci! && sh === 1 && sw === 1 && dh === 1 && dw === 1 && pt < kh && pb < kh && pl < kw && pr < kw;
  if (method === 'im2col' && gySide) {
    // Fewer output than input channels: gather the patches from gy instead, shifted the other way,
    // so the 9x patch tensor has Co rather than Ci channels. With h = ho + i - pt,
    // dW[co, ci, i, j] = sum gy[n, co, h + pt - i, w + pl - j] * x[n, ci, h, w] over the unpadded x.
    const k = kh * kw;
    const [h, w] = staticDims(x, 2, 'conv weight gradient') as [number, number];
    const onehot = new Float32Array(co * k * k);
    for (let ch = 0; ch < co; ch++) {
      for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) onehot[(ch * k + i * kw + j) * k + (kh - 1 - i) * kw + (kw - 1 - j)] = 1;
    }
    const cols = g.op1('Conv', [gy, g.constant(makeTensor(gy.dtype, [co * k, 1, kh, kw], onehot), 'im2col_onehot')], {
      kernel_shape: attr.ints([kh, kw]),
      pads: attr.ints([kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr]),
      group: attr.int(co),
    }); // [N, Co*K, H, W]
    const xT = g.transpose(g.reshape(x, [0, ci!, h * w]), [0, 2, 1]);
    const prod = g.matmul(g.reshape(cols, [0, co * k, h * w]), xT); // [N, Co*K, Ci]
    return g.transpose(g.reshape(g.reduceSum(prod, [0], false), [co, kh, kw, ci!]), [0, 3, 1, 2]);
  }
  if (method === 'im2col') {
    const k = kh * kw;
    const p = ho * wo;
    let cols: Value = x;
    const identity = k === 1 && sh === 1 && sw === 1 && !(pt || pl || pb || pr);
    if (!identity) {
      const onehot = new Float32Array(ci! * k * k);
      for (let ch = 0; ch < ci!; ch++) for (let t = 0; t < k; t++) onehot[(ch * k + t) * k + t] = 1;
      cols = g.op1('Conv', [x, g.constant(makeTensor(x.dtype, [ci! * k, 1, kh, kw], onehot), 'im2col_onehot')], {
        kernel_shape: attr.ints([kh, kw]),
        strides: attr.ints([sh, sw]),
        dilations: attr.ints([dh, dw]),
        pads: attr.ints([pt, pl, pb, pr]),
        group: attr.int(ci!),
      });
    }
    // [N, Ci*K, P] @ [N, P, Co] -> [N, Ci*K, Co]; ORT fuses the transpose of gy into the MatMul.
    const gyT = g.transpose(g.reshape(gy, [0, co, p]), [0, 2, 1]);
    const prod = g.matmul(g.reshape(cols, [0, ci! * k, p]), gyT);
    return g.reshape(g.transpose(g.reduceSum(prod, [0], false), [1, 0]), [co, ci!, kh, kw]);
  }
  const xp = pt || pl || pb || pr ? g.op1('Pad', [x, g.int64s([0, 0, pt, pl, 0, 0, pb, pr])]) : x;
  const p = ho * wo;
  const gyT = g.transpose(g.reshape(gy, [0, co, p]), [0, 2, 1]); // [N, P, Co]
  const taps: Value[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const r0 = i * dh;
      const c0 = j * dw;
      const xs = g.slice(xp, [r0, c0], [r0 + sh * (ho - 1) + 1, c0 + sw * (wo - 1) + 1], [2, 3], [sh, sw]);
      const prod = g.matmul(g.reshape(xs, [0, ci!, p]), gyT); // [N, Ci, Co]
      taps.push(g.reshape(g.reduceSum(prod, [0], false), [ci!, co, 1]));
    }
  }
  const stacked = taps.length === 1 ? taps[0]! : g.concat(taps, 2); // [Ci, Co, K]
  return g.reshape(g.transpose(stacked, [1, 0, 2]), [co, ci!, kh, kw]);
}

function biasGrad(c: GradContext, gy: Value): Value {
  return c.g.reduceSum(gy, [0, ...gy.shape.slice(2).map((_, i) => i + 2)], false);
}

const convRule: GradRule = ([gyIn], node, c) => {
  const g = c.g;
  const [x, w, b] = node.inputs;
  const [y] = node.outputs;
  const needs = node.needs;
  if (x!.shape.length !== 4) throw new GraphError('Conv gradient: only 2-D convolutions (NCHW) are supported');
  const gy = c.materialize(gyIn!, y!);
  const geo = geometry(node, w!);
  let gx: Value | null = null;
  if (needs[0]) {
    const [h, wd] = staticDims(x!, 2, 'Conv input gradient') as [number, number];
    const [ho, wo] = staticDims(y!, 2, 'Conv input gradient') as [number, number];
    const unitStride = geo.strides.every((s) => s === 1);
    // The flipped-kernel Conv needs pads (k-1)*d - p >= 0; larger forward pads fall back to ConvTranspose.
    const padsFit = geo.pads.every((p, i) => p <= (geo.kernel[i % 2]! - 1) * geo.dilations[i % 2]!);
    if (c.options.convInputGrad === 'conv' && unitStride && padsFit) {
      // Stride 1: correlation of gy with the spatially flipped, in/out-swapped kernel.
      const [kh, kw] = geo.kernel as [number, number];
      const [dh, dw] = geo.dilations as [number, number];
      const flipped = g.slice(g.transpose(w!, [1, 0, 2, 3]), [-1, -1], [-kh - 1, -kw - 1], [2, 3], [-1, -1]);
      const [pt, pl, pb, pr] = geo.pads as [number, number, number, number];
      const eh = (kh - 1) * dh;
      const ew = (kw - 1) * dw;
      gx = g.op1('Conv', [gy, flipped], {
        kernel_shape: attr.ints([kh, kw]),
        dilations: attr.ints([dh, dw]),
        pads: attr.ints([eh - pt, ew - pl, h - ho + pt, wd - wo + pl]),
      });
    } else {
      // ConvTranspose with the same weights is the adjoint of Conv; output_padding restores sizes
      // lost to the floor in the forward size formula.
      const outPad = [h, wd].map((n, i) => {
        const s = geo.strides[i]!;
        const k = geo.kernel[i]!;
        const d = geo.dilations[i]!;
        const full = s * ([ho, wo][i]! - 1) + (k - 1) * d + 1 - geo.pads[i]! - geo.pads[i + 2]!;
        return n - full;
      });
      gx = g.op1('ConvTranspose', [gy, w!], {
        kernel_shape: attr.ints(geo.kernel),
        strides: attr.ints(geo.strides),
        pads: attr.ints(geo.pads),
        dilations: attr.ints(geo.dilations),
        ...(outPad.some((v) => v !== 0) ? { output_padding: attr.ints(outPad) } : {}),
      });
    }
  }
  const gw = needs[1] ? convWeightGrad(c, x!, gy, geo, c.options.convWeightGrad) : null;
  const gb = b && needs[2] ? biasGrad(c, gy) : null;
  return [gx, gw, gb];
};

const convTransposeRule: GradRule = ([gyIn], node, c) => {
  const g = c.g;
  const [x, w, b] = node.inputs;
  const [y] = node.outputs;
  const needs = node.needs;
  if (x!.shape.length !== 4) throw new GraphError('ConvTranspose gradient: only 2-D (NCHW) is supported');
  if (node.attrs['output_shape']) throw new GraphError('ConvTranspose gradient: output_shape is not supported');
  const gy = c.materialize(gyIn!, y!);
  const geo = geometry(node, w!);
  // y = ConvTranspose(x; W) is the adjoint of z -> Conv(z; W) (W as [C_out=Cx, C_in=Cy, k, k]), so
  // dx = Conv(gy; W) and dW is that Conv's weight gradient with input gy and output gradient x.
  const gx = needs[0]
    ? g.op1('Conv', [gy, w!], {
        kernel_shape: attr.ints(geo.kernel),
        strides: attr.ints(geo.strides),
        pads: attr.ints(geo.pads),
        dilations: attr.ints(geo.dilations),
      })
    : null;
  const gw = needs[1] ? convWeightGrad(c, gy, x!, geo, c.options.convWeightGrad) : null;
  const gb = b && needs[2] ? biasGrad(c, gy) : null;
  return [gx, gw, gb];
};

export const convGradRules: [string, GradRule][] = [
  ['Conv', convRule],
  ['ConvTranspose', convTransposeRule],
];
