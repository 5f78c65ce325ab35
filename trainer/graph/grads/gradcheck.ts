import * as ort from 'onnxruntime-node';
import { gradients, type GradOptions } from '../autodiff.ts';
import { Graph, makeTensor, type DType, type Value } from '../builder.ts';
import { encodeModel } from '../onnx/encode.ts';
import { Rng } from '../../../core/rng.ts';
import { gaussian } from '../../model/gaussian.ts';

/**
 * Finite-difference check of autodiff through onnxruntime (test helper). The checked function is
 * reduced to a scalar with a fixed random projection, L = sum(f(x) * R), so every output element
 * contributes; each element of each differentiated input is perturbed by +-eps (central difference).
 */
export interface GradCheckInput {
  name: string;
  dims: number[];
  /** Values; default standard normal from the seed. */
  data?: ArrayLike<number>;
  /** Differentiate with respect to this input (default true). */
  wrt?: boolean;
  /** Symbolic shape for the graph input, e.g. ['N', 2, 4, 4] (default: dims). */
  shape?: (number | string)[];
}

export interface GradCheckOptions {
  inputs: GradCheckInput[];
  build: (g: Graph, inputs: Value[]) => Value;
  dtype?: 'float32' | 'float64';
  eps?: number;
  rtol?: number;
  atol?: number;
  seed?: number;
  gradOptions?: Partial<GradOptions>;
  /** Skip the projection (the build already returns a scalar loss). */
  scalarOutput?: boolean;
}

export interface GradCheckResult {
  worst: { input: string; index: number; analytic: number; numeric: number } | null;
  checked: number;
  failures: string[];
}

export async function gradCheck(opts: GradCheckOptions): Promise<GradCheckResult> {
  const dtype: DType = opts.dtype ?? 'float64';
  const eps = opts.eps ?? (dtype === 'float64' ? 1e-6 : 1e-2);
  const rtol = opts.rtol ?? (dtype === 'float64' ? 1e-6 : 2e-2);
  const atol = opts.atol ?? (dtype === 'float64' ? 1e-8 : 2e-3);
  const normal = gaussian(new Rng(opts.seed ?? 1234));
  const makeArr = (v: ArrayLike<number>): Float32Array | Float64Array => (dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v));

  const g = new Graph('gradcheck');
  const values = opts.inputs.map((i) => g.input(i.name, dtype, i.shape ?? i.dims));
  const out = opts.build(g, values);
  let loss: Value;
  if (opts.scalarOutput) {
    loss = out;
  } else {
    const dims = out.shape.map((d, k) => {
      if (typeof d === 'number') return d;
      // A symbolic output dim: resolve it from the matching input dim (tests use the same symbol).
      for (const i of opts.inputs) {
        const at = (i.shape ?? []).indexOf(d);
        if (at >= 0) return i.dims[at]!;
      }
      throw new Error(`cannot resolve output dim ${d} (axis ${k})`);
    });
    const r = makeTensor(dtype, dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => normal()));
    loss = g.reduceSum(g.mul(out, g.constant(r, 'projection')), undefined, false);
  }
  const wrt = values.filter((_, k) => opts.inputs[k]!.wrt !== false);
  const grads = gradients(g, loss, wrt, opts.gradOptions);
  g.output(loss, 'loss');
  for (const w of wrt) g.output(grads.get(w.name)!, `grad_${w.name}`);
  const session = await ort.InferenceSession.create(encodeModel(g), { graphOptimizationLevel: 'basic', intraOpNumThreads: 1 });

  const data = opts.inputs.map((i) => {
    const n = i.dims.reduce((a, b) => a * b, 1);
    return makeArr(i.data ?? Array.from({ length: n }, () => normal()));
  });
  const feeds = () => Object.fromEntries(opts.inputs.map((i, k) => [i.name, new ort.Tensor(dtype, data[k]!, i.dims)]));
  const lossAt = async () => Number((await session.run(feeds(), ['loss']))['loss']!.data[0]);

  const result: GradCheckResult = { worst: null, checked: 0, failures: [] };
  try {
    const base = await session.run(feeds());
    let worstRatio = -1;
    for (let k = 0; k < opts.inputs.length; k++) {
      const inp = opts.inputs[k]!;
      if (inp.wrt === false) continue;
      const analytic = base[`grad_${inp.name}`]!.data as Float32Array | Float64Array;
      const d = data[k]!;
      for (let i = 0; i < d.length; i++) {
        const orig = d[i]!;
        d[i] = orig + eps;
        const lp = await lossAt();
        d[i] = orig - eps;
        const lm = await lossAt();
        d[i] = orig;
        const numeric = (lp - lm) / (2 * eps);
        const a = analytic[i]!;
        const bound = atol + rtol * Math.abs(numeric);
        const ratio = Math.abs(a - numeric) / bound;
        result.checked++;
        if (ratio > worstRatio) {
          worstRatio = ratio;
          result.worst = { input: inp.name, index: i, analytic: a, numeric };
        }
        if (!(ratio <= 1)) result.failures.push(`${inp.name}[${i}]: analytic ${a}, numeric ${numeric}`);
      }
    }
  } finally {
    await session.release();
  }
  return result;
}

/** Values spaced at least `gap` apart in random order: keeps max/ReLU kinks away from +-eps. */
export function distinctValues(n: number, gap: number, seed: number, offset = 0): number[] {
  const rng = new Rng(seed);
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * gap + offset);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [v[i], v[j]] = [v[j]!, v[i]!];
  }
  return v;
}

/** Standard normals pushed away from zero by at least `margin` (ReLU/Abs kinks). */
export function awayFromZero(n: number, margin: number, seed: number): number[] {
  const normal = gaussian(new Rng(seed));
  return Array.from({ length: n }, () => {
    const v = normal();
    return v >= 0 ? v + margin : v - margin;
  });
}
