import type { Attrs, Graph, Value } from '../graph/builder.ts';
import { attr, makeTensor } from '../graph/builder.ts';
import { Rng } from '../../core/rng.ts';
import { gaussian } from './gaussian.ts';

export type UpsampleMode = 'transpose' | 'nearest' | 'bilinear';

export interface UNetConfig {
  depth: number;
  baseChannels: number;
  inChannels: number;
  classes: number;
  upsample: UpsampleMode;
}

export class UNetConfigError extends Error {
  override name = 'UNetConfigError';
}

/** PyTorch's BatchNorm2d defaults, so trained statistics mean the same thing here and there. */
export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

export type ParamRole = 'conv.weight' | 'conv.bias' | 'bn.scale' | 'bn.bias' | 'bn.mean' | 'bn.var';

export interface ParamSpec {
  readonly name: string;
  readonly dims: readonly number[];
  readonly role: ParamRole;
  /** false for BatchNorm running statistics: state, not optimised. */
  readonly trainable: boolean;
  /** He-init fan-in for conv weights. */
  readonly fanIn?: number;
}

export function validateUNetConfig(cfg: UNetConfig, height?: number, width?: number): void {
  const intIn = (v: number, lo: number, hi: number, what: string) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new UNetConfigError(`${what} must be an integer in [${lo}, ${hi}], got ${v}`);
  };
  intIn(cfg.depth, 1, 8, 'unet.depth');
  intIn(cfg.baseChannels, 1, 1024, 'unet.baseChannels');
  intIn(cfg.inChannels, 1, 64, 'unet.inChannels');
  intIn(cfg.classes, 1, 256, 'unet.classes');
  if (!['transpose', 'nearest', 'bilinear'].includes(cfg.upsample)) {
    throw new UNetConfigError(`unet.upsample must be 'transpose', 'nearest' or 'bilinear', got '${cfg.upsample}'`);
  }
  const m = 2 ** cfg.depth;
  for (const [what, v] of [['height', height], ['width', width]] as const) {
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v <= 0 || v % m !== 0) {
      throw new UNetConfigError(`input ${what} ${v} must be a positive multiple of 2^depth = ${m} (depth ${cfg.depth})`);
    }
  }
}

const channels = (cfg: UNetConfig, level: number) => cfg.baseChannels * 2 ** level;

/**
 * Parameter list in a fixed order (checkpoints and Adam state follow it).
 * Encoder level l (0..depth) has two 3x3 conv+BN+ReLU at base*2^l channels; levels 0..depth-1 are
 * followed by a 2x2 max-pool. Decoder level l (depth-1..0) upsamples level l+1 to base*2^l channels
 * (2x2 stride-2 ConvTranspose, or nearest/bilinear Resize followed by a 1x1 conv), concatenates the
 * skip connection and applies two conv+BN+ReLU. A 1x1 head gives `classes` logits.
 */
export function unetParamSpecs(cfg: UNetConfig): ParamSpec[] {
  validateUNetConfig(cfg);
  const specs: ParamSpec[] = [];
  const convBn = (prefix: string, cin: number, cout: number) => {
    specs.push({ name: `${prefix}.conv.weight`, dims: [cout, cin, 3, 3], role: 'conv.weight', trainable: true, fanIn: cin * 9 });
    specs.push({ name: `${prefix}.bn.scale`, dims: [cout], role: 'bn.scale', trainable: true });
    specs.push({ name: `${prefix}.bn.bias`, dims: [cout], role: 'bn.bias', trainable: true });
    specs.push({ name: `${prefix}.bn.mean`, dims: [cout], role: 'bn.mean', trainable: false });
    specs.push({ name: `${prefix}.bn.var`, dims: [cout], role: 'bn.var', trainable: false });
  };
  for (let l = 0; l <= cfg.depth; l++) {
    const cin = l === 0 ? cfg.inChannels : channels(cfg, l - 1);
    convBn(`enc${l}.0`, cin, channels(cfg, l));
    convBn(`enc${l}.1`, channels(cfg, l), channels(cfg, l));
  }
  for (let l = cfg.depth - 1; l >= 0; l--) {
    const cin = channels(cfg, l + 1);
    const cout = channels(cfg, l);
    if (cfg.upsample === 'transpose') {
      // ConvTranspose weight layout is [Cin, Cout, kH, kW]; each output pixel sees one tap of Cin inputs.
      specs.push({ name: `dec${l}.up.weight`, dims: [cin, cout, 2, 2], role: 'conv.weight', trainable: true, fanIn: cin });
    } else {
      specs.push({ name: `dec${l}.up.weight`, dims: [cout, cin, 1, 1], role: 'conv.weight', trainable: true, fanIn: cin });
    }
    specs.push({ name: `dec${l}.up.bias`, dims: [cout], role: 'conv.bias', trainable: true });
    convBn(`dec${l}.0`, 2 * cout, cout);
    convBn(`dec${l}.1`, cout, cout);
  }
  specs.push({ name: 'head.weight', dims: [cfg.classes, channels(cfg, 0), 1, 1], role: 'conv.weight', trainable: true, fanIn: channels(cfg, 0) });
  specs.push({ name: 'head.bias', dims: [cfg.classes], role: 'conv.bias', trainable: true });
  return specs;
}

export function countTrainable(cfg: UNetConfig): number {
  return unetParamSpecs(cfg)
    .filter((s) => s.trainable)
    .reduce((n, s) => n + s.dims.reduce((a, b) => a * b, 1), 0);
}

/** He-normal conv weights (std sqrt(2/fan_in)) from a seeded PRNG; zero biases; BN at identity. */
export function initUNetParams(cfg: UNetConfig, seed: number): Map<string, Float32Array> {
  const normal = gaussian(new Rng(seed));
  const out = new Map<string, Float32Array>();
  for (const s of unetParamSpecs(cfg)) {
    const a = new Float32Array(s.dims.reduce((x, y) => x * y, 1));
    if (s.role === 'conv.weight') {
      const std = Math.sqrt(2 / s.fanIn!);
      for (let i = 0; i < a.length; i++) a[i] = normal() * std;
    } else if (s.role === 'bn.scale' || s.role === 'bn.var') {
      a.fill(1);
    }
    out.set(s.name, a);
  }
  return out;
}

/**
 * How BatchNorm appears in the built graph:
 *  - 'train': batch statistics (ReduceMean of x and x^2 feeding an inference-form BatchNormalization,
 *    so every piece has a gradient rule); running-statistic updates become extra values.
 *  - 'inference': BatchNormalization with the running statistics.
 *  - 'folded': no BN; each conv carries `${prefix}.conv.bias` and pre-scaled weights (see foldBatchNorm).
 */
export type BatchNormMode = 'train' | 'inference' | 'folded';

export interface UNetForward {
  logits: Value;
  /** 'train' mode only: running mean/var after this batch, keyed by parameter name. */
  runningStats: Map<string, Value>;
}

/** Appends the UNet forward pass to `g`; `param(name)` supplies each parameter as a graph value. */
export function buildUNetForward(
  g: Graph,
  cfg: UNetConfig,
  image: Value,
  param: (name: string) => Value,
  bnMode: BatchNormMode,
  logitsName = 'logits',
): UNetForward {
  validateUNetConfig(cfg);
  const runningStats = new Map<string, Value>();
  const conv3 = (x: Value, prefix: string): Value => {
    const w = param(`${prefix}.conv.weight`);
    const pads = { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]), strides: attr.ints([1, 1]) };
    if (bnMode === 'folded') return g.relu(g.op1('Conv', [x, w, param(`${prefix}.conv.bias`)], pads));
    const y = g.op1('Conv', [x, w], pads);
    const scale = param(`${prefix}.bn.scale`);
    const bias = param(`${prefix}.bn.bias`);
    if (bnMode === 'inference') {
      return g.relu(g.op1('BatchNormalization', [y, scale, bias, param(`${prefix}.bn.mean`), param(`${prefix}.bn.var`)], { epsilon: attr.float(BN_EPS) }));
    }
    const { normalized, mean, variance } = batchNormTrain(g, y, scale, bias);
    const n = spatialCount(g, y);
    const mom = BN_MOMENTUM;
    const rm = param(`${prefix}.bn.mean`);
    const rv = param(`${prefix}.bn.var`);
    // PyTorch keeps the unbiased variance in running_var.
    const unbiased = g.mul(variance, g.div(n, g.sub(n, g.scalar(1))));
    runningStats.set(rm.name, g.add(g.mul(rm, g.scalar(1 - mom)), g.mul(mean, g.scalar(mom))));
    runningStats.set(rv.name, g.add(g.mul(rv, g.scalar(1 - mom)), g.mul(unbiased, g.scalar(mom))));
    return g.relu(normalized);
  };
  const block = (x: Value, prefix: string) => conv3(conv3(x, `${prefix}.0`), `${prefix}.1`);

  const skips: Value[] = [];
  let x = image;
  for (let l = 0; l <= cfg.depth; l++) {
    x = block(x, `enc${l}`);
    if (l < cfg.depth) {
      skips.push(x);
      x = g.op1('MaxPool', [x], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) });
    }
  }
  for (let l = cfg.depth - 1; l >= 0; l--) {
    const w = param(`dec${l}.up.weight`);
    const b = param(`dec${l}.up.bias`);
    let up: Value;
    if (cfg.upsample === 'transpose') {
      up = g.op1('ConvTranspose', [x, w, b], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) });
    } else {
      const scales = g.constant(makeTensor('float32', [4], [1, 1, 2, 2]), 'up_scales');
      const resizeAttrs: Attrs =
        cfg.upsample === 'nearest'
          ? { mode: attr.string('nearest'), coordinate_transformation_mode: attr.string('asymmetric'), nearest_mode: attr.string('floor') }
          : { mode: attr.string('linear'), coordinate_transformation_mode: attr.string('half_pixel') };
      const r = g.op1('Resize', [x, null, scales], resizeAttrs);
      up = g.op1('Conv', [r, w, b], { kernel_shape: attr.ints([1, 1]) });
    }
    x = block(g.concat([skips[l]!, up], 1), `dec${l}`);
  }
  const logits = g.op1('Conv', [x, param('head.weight'), param('head.bias')], { kernel_shape: attr.ints([1, 1]) }, logitsName);
  return { logits, runningStats };
}

/**
 * Training-form BatchNorm from primitives: per-channel mean and E[x^2] over N,H,W, biased variance
 * clamped at 0 (one pass instead of two; the clamp guards the cancellation), then the inference-form
 * BatchNormalization op applies (x - mean) / sqrt(var + eps) * scale + bias in one fused kernel.
 */
export function batchNormTrain(g: Graph, x: Value, scale: Value, bias: Value): { normalized: Value; mean: Value; variance: Value } {
  const axes = [0, 2, 3];
  const mean = g.reduceMean(x, axes, false);
  // ReduceSumSquare reads x once and writes nothing big, unlike ReduceMean(x * x).
  const ex2 = g.div(g.reduceSumSquare(x, axes, false), spatialCount(g, x));
  const variance = g.relu(g.sub(ex2, g.mul(mean, mean)));
  const normalized = g.op1('BatchNormalization', [x, scale, bias, mean, variance], { epsilon: attr.float(BN_EPS) });
  return { normalized, mean, variance };
}

/** N*H*W of an NCHW value as a scalar of x's float type, read at run time (N is dynamic). */
function spatialCount(g: Graph, x: Value): Value {
  const shape = g.op1('Shape', [x]);
  const nhw = g.op1('Gather', [shape, g.int64s([0, 2, 3])], { axis: attr.int(0) });
  const prod = g.op('ReduceProd', [nhw], { keepdims: attr.int(0) }, { shapes: [{ dtype: 'int64', shape: [] }] })[0]!;
  return g.op1('Cast', [prod], { to: attr.int(x.dtype === 'float64' ? 11 : 1) });
}

/**
 * Folds inference BatchNorm into the preceding conv: w' = w * s, b' = bias - mean * s with
 * s = scale / sqrt(var + eps). Returns the tensors a 'folded' forward graph asks for.
 */
export function foldBatchNorm(cfg: UNetConfig, tensors: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  const specs = unetParamSpecs(cfg);
  for (const s of specs) {
    if (s.role.startsWith('bn.')) continue;
    const t = tensors.get(s.name);
    if (!t) throw new UNetConfigError(`missing tensor ${s.name}`);
    out.set(s.name, t);
  }
  for (const s of specs) {
    if (s.role !== 'bn.scale') continue;
    const prefix = s.name.slice(0, -'.bn.scale'.length);
    const get = (n: string) => {
      const t = tensors.get(`${prefix}.${n}`);
      if (!t) throw new UNetConfigError(`missing tensor ${prefix}.${n}`);
      return t;
    };
    const w = get('conv.weight');
    const scale = get('bn.scale');
    const bias = get('bn.bias');
    const mean = get('bn.mean');
    const variance = get('bn.var');
    const cout = scale.length;
    const per = w.length / cout;
    const w2 = new Float32Array(w.length);
    const b2 = new Float32Array(cout);
    for (let c = 0; c < cout; c++) {
      // Double precision for the fold itself; only the stored result is float32.
      const sc = scale[c]! / Math.sqrt(variance[c]! + BN_EPS);
      for (let i = 0; i < per; i++) w2[c * per + i] = w[c * per + i]! * sc;
      b2[c] = bias[c]! - mean[c]! * sc;
    }
    out.set(`${prefix}.conv.weight`, w2);
    out.set(`${prefix}.conv.bias`, b2);
  }
  return out;
}
