/**
 * One training step against float64 reference formulas written here, for a tiny UNet (depth 1, base
 * 2, 8x8, batch 2, nearest upsampling), from a state that is not the initial one: random BN
 * scale/bias and running statistics, nonzero Adam moments and step count 4 (so this is step t = 5,
 * where bias correction is neither 1 nor the first step's), weight decay > 0, betas off their defaults.
 *
 * The reference: this file's own float64 forward pass (3x3 conv, training-mode BatchNorm, ReLU, 2x2
 * max-pool, nearest 2x upsampling + 1x1 conv, skip concat, 1x1 head) and ComboLoss (bce 3, dice 1,
 * focal 4, as documented in trainer/model/loss.ts), its gradient by central finite differences, then
 * PyTorch's definitions:
 *   Adam (torch.optim.Adam, weight_decay = L2 added to the gradient):
 *     g' = g + wd * p;  m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2
 *     p  = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *   BatchNorm2d (momentum 0.1): running_mean = 0.9 rm + 0.1 mean_batch,
 *     running_var = 0.9 rv + 0.1 var_batch * n / (n - 1)   (unbiased), n = N*H*W.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Rng } from '../../core/rng.ts';
import { unetParamSpecs } from '../model/unet.ts';
import { createTrainingSession, type AdamConfig, type TrainingSessionOptions } from './training-session.ts';

const N = 2;
const H = 8;
const W = 8;
const ADAM: AdamConfig = { beta1: 0.8, beta2: 0.95, eps: 1e-8, weightDecay: 0.05 };
const LR = 0.01;
const STEPS_BEFORE = 4;
const LOSS = { bce: 3, dice: 1, focal: 4 };
const opts: TrainingSessionOptions = {
  unet: { depth: 1, baseChannels: 2, inChannels: 1, classes: 1, upsample: 'nearest' },
  height: H,
  width: W,
  loss: LOSS,
  adam: ADAM,
  device: 'cpu',
  seed: 7,
  intraOpThreads: 1,
  logger: pino({ level: 'silent' }),
};

// ---- float64 reference forward ----------------------------------------------------------------
interface T4 {
  d: Float64Array;
  c: number;
  h: number;
  w: number;
}
type Params = Map<string, Float64Array>;
/** Batch statistics seen by each BatchNorm, for the running-statistic reference. */
type BnStats = Map<string, { mean: Float64Array; biasedVar: Float64Array; n: number }>;

const at = (t: T4, n: number, c: number, y: number, x: number) => ((n * t.c + c) * t.h + y) * t.w + x;

function conv(x: T4, wt: Float64Array, cout: number, k: number, bias?: Float64Array): T4 {
  const pad = (k - 1) / 2;
  const o: T4 = { d: new Float64Array(N * cout * x.h * x.w), c: cout, h: x.h, w: x.w };
  for (let n = 0; n < N; n++)
    for (let co = 0; co < cout; co++)
      for (let y = 0; y < x.h; y++)
        for (let xx = 0; xx < x.w; xx++) {
          let s = bias ? bias[co]! : 0;
          for (let ci = 0; ci < x.c; ci++)
            for (let ky = 0; ky < k; ky++)
              for (let kx = 0; kx < k; kx++) {
                const iy = y + ky - pad;
                const ix = xx + kx - pad;
                if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w) continue;
                s += x.d[at(x, n, ci, iy, ix)]! * wt[((co * x.c + ci) * k + ky) * k + kx]!;
              }
          o.d[at(o, n, co, y, xx)] = s;
        }
  return o;
}

function bnReluTrain(x: T4, p: Params, prefix: string, stats: BnStats): T4 {
  const scale = p.get(`${prefix}.bn.scale`)!;
  const bias = p.get(`${prefix}.bn.bias`)!;
  const cnt = N * x.h * x.w;
  const mean = new Float64Array(x.c);
  const v = new Float64Array(x.c);
  for (let c = 0; c < x.c; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < x.h * x.w; i++) s += x.d[at(x, n, c, 0, 0) + i]!;
    mean[c] = s / cnt;
    let q = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < x.h * x.w; i++) q += (x.d[at(x, n, c, 0, 0) + i]! - mean[c]!) ** 2;
    v[c] = q / cnt;
  }
  stats.set(prefix, { mean, biasedVar: v, n: cnt });
  const o: T4 = { ...x, d: new Float64Array(x.d.length) };
  for (let n = 0; n < N; n++)
    for (let c = 0; c < x.c; c++)
      for (let i = 0; i < x.h * x.w; i++) {
        const j = at(x, n, c, 0, 0) + i;
        o.d[j] = Math.max(0, ((x.d[j]! - mean[c]!) / Math.sqrt(v[c]! + 1e-5)) * scale[c]! + bias[c]!);
      }
  return o;
}

const convBn = (x: T4, p: Params, prefix: string, cout: number, stats: BnStats) => bnReluTrain(conv(x, p.get(`${prefix}.conv.weight`)!, cout, 3), p, prefix, stats);

function maxPool(x: T4): T4 {
  const o: T4 = { d: new Float64Array((x.d.length / 4) | 0), c: x.c, h: x.h / 2, w: x.w / 2 };
  for (let n = 0; n < N; n++)
    for (let c = 0; c < x.c; c++)
      for (let y = 0; y < o.h; y++)
        for (let xx = 0; xx < o.w; xx++)
          o.d[at(o, n, c, y, xx)] = Math.max(
            x.d[at(x, n, c, 2 * y, 2 * xx)]!,
            x.d[at(x, n, c, 2 * y, 2 * xx + 1)]!,
            x.d[at(x, n, c, 2 * y + 1, 2 * xx)]!,
            x.d[at(x, n, c, 2 * y + 1, 2 * xx + 1)]!,
          );
  return o;
}

function upNearest(x: T4): T4 {
  const o: T4 = { d: new Float64Array(x.d.length * 4), c: x.c, h: x.h * 2, w: x.w * 2 };
  for (let n = 0; n < N; n++)
    for (let c = 0; c < x.c; c++)
      for (let y = 0; y < o.h; y++) for (let xx = 0; xx < o.w; xx++) o.d[at(o, n, c, y, xx)] = x.d[at(x, n, c, y >> 1, xx >> 1)]!;
  return o;
}

function concat(a: T4, b: T4): T4 {
  const o: T4 = { d: new Float64Array(a.d.length + b.d.length), c: a.c + b.c, h: a.h, w: a.w };
  const plane = a.h * a.w;
  for (let n = 0; n < N; n++) {
    o.d.set(a.d.subarray(n * a.c * plane, (n + 1) * a.c * plane), n * o.c * plane);
    o.d.set(b.d.subarray(n * b.c * plane, (n + 1) * b.c * plane), (n * o.c + a.c) * plane);
  }
  return o;
}

function forward(p: Params, image: Float32Array, stats: BnStats): Float64Array {
  const x: T4 = { d: Float64Array.from(image), c: 1, h: H, w: W };
  const e0 = convBn(convBn(x, p, 'enc0.0', 2, stats), p, 'enc0.1', 2, stats);
  const e1 = convBn(convBn(maxPool(e0), p, 'enc1.0', 4, stats), p, 'enc1.1', 4, stats);
  const up = conv(upNearest(e1), p.get('dec0.up.weight')!, 2, 1, p.get('dec0.up.bias')!);
  const d0 = convBn(convBn(concat(e0, up), p, 'dec0.0', 2, stats), p, 'dec0.1', 2, stats);
  return conv(d0, p.get('head.weight')!, 1, 1, p.get('head.bias')!).d;
}

function lossTerms(logits: Float64Array, target: Float32Array): { bce: number; dice: number; focal: number; total: number } {
  let bce = 0;
  let focal = 0;
  let inter = 0;
  let sumP = 0;
  let sumT = 0;
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i]!;
    const t = target[i]!;
    bce += Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));
    const p = 1 / (1 + Math.exp(-x));
    inter += p * t;
    sumP += p;
    sumT += t;
    const pc = Math.min(Math.max(p, 1e-8), 1 - 1e-8);
    const tc = Math.min(Math.max(t, 1e-8), 1 - 1e-8);
    const pt = tc * pc + (1 - tc) * (1 - pc);
    focal += -((1 - pt) ** 2) * Math.log(pt);
  }
  bce /= logits.length;
  focal /= logits.length;
  const dice = 1 - (2 * inter + 1) / (sumP + sumT + 1);
  return { bce, dice, focal, total: Math.max(1e-5, LOSS.bce * bce + LOSS.dice * dice + LOSS.focal * focal) };
}

// ---- the test ---------------------------------------------------------------------------------
test('one Adam step (t = 5, weight decay, nonzero moments) and the BN running statistics equal float64 reference formulas (PyTorch definitions)', async () => {
  const rng = new Rng(2024);
  const u = () => rng.next();
  // Inputs: smooth-ish noise and a blob mask, so every loss term has a gradient.
  const images = Float32Array.from({ length: N * H * W }, () => u());
  const masks = Float32Array.from({ length: N * H * W }, (_, i) => {
    const y = (i >> 3) & 7;
    const x = i & 7;
    return (x - 3) ** 2 + (y - 4) ** 2 < 6 + (i >> 6) * 4 ? 1 : 0;
  });

  const s = await createTrainingSession(opts);
  try {
    const specs = unetParamSpecs(opts.unet);
    const ckpt = s.checkpoint();
    // A state off the initial one: BN affine and running statistics perturbed.
    for (const sp of specs) {
      const d = ckpt.tensors[sp.name]!.data;
      if (sp.role === 'bn.scale') d.forEach((_, i) => (d[i] = 0.8 + 0.4 * u()));
      if (sp.role === 'bn.bias' || sp.role === 'conv.bias') d.forEach((_, i) => (d[i] = 0.2 * (u() - 0.5)));
      if (sp.role === 'bn.mean') d.forEach((_, i) => (d[i] = u() - 0.5));
      if (sp.role === 'bn.var') d.forEach((_, i) => (d[i] = 0.5 + u()));
    }
    // Reference parameters: exactly the float32 values the session will hold.
    const p64: Params = new Map(specs.map((sp) => [sp.name, Float64Array.from(ckpt.tensors[sp.name]!.data)]));

    // Reference loss and its gradient by central differences (float64, h = 1e-6).
    const stats: BnStats = new Map();
    const ref = lossTerms(forward(p64, images, stats), masks);
    const grad = new Map<string, Float64Array>();
    const h = 1e-6;
    for (const sp of specs.filter((x) => x.trainable)) {
      const p = p64.get(sp.name)!;
      const g = new Float64Array(p.length);
      for (let i = 0; i < p.length; i++) {
        const keep = p[i]!;
        p[i] = keep + h;
        const up = lossTerms(forward(p64, images, new Map()), masks).total;
        p[i] = keep - h;
        const down = lossTerms(forward(p64, images, new Map()), masks).total;
        p[i] = keep;
        g[i] = (up - down) / (2 * h);
      }
      grad.set(sp.name, g);
    }

    // Nonzero moments of the gradient's own scale (as after a few steps), step count 4.
    for (const sp of specs.filter((x) => x.trainable)) {
      const g = grad.get(sp.name)!;
      ckpt.tensors[`adam.m.${sp.name}`]!.data.forEach((_, i, a) => (a[i] = g[i]! * (2 * u() - 1)));
      ckpt.tensors[`adam.v.${sp.name}`]!.data.forEach((_, i, a) => (a[i] = g[i]! ** 2 * (0.2 + 2 * u()) + 1e-12));
    }
    ckpt.step = STEPS_BEFORE;
    s.restore(ckpt);
    const before = s.checkpoint();

    const r = await s.step(images, masks, N, LR);
    const after = s.checkpoint();
    assert.equal(after.step, STEPS_BEFORE + 1);

    // The loss the step reports is the reference's (so the reference forward is this network).
    for (const k of ['bce', 'dice', 'focal'] as const) assert.ok(Math.abs(r[k] - ref[k]) < 1e-5 * Math.max(1, ref[k]), `${k}: step ${r[k]}, reference ${ref[k]}`);
    assert.ok(Math.abs(r.loss - ref.total) < 1e-5 * ref.total, `total: step ${r.loss}, reference ${ref.total}`);

    const t = STEPS_BEFORE + 1;
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = ADAM;
    let checked = 0;
    for (const sp of specs.filter((x) => x.trainable)) {
      const p = before.tensors[sp.name]!.data;
      const m = before.tensors[`adam.m.${sp.name}`]!.data;
      const v = before.tensors[`adam.v.${sp.name}`]!.data;
      const g = grad.get(sp.name)!;
      const gScale = Math.max(...g.map(Math.abs), 1e-6);
      for (let i = 0; i < p.length; i++) {
        const gd = g[i]! + wd * p[i]!;
        const m2 = b1 * m[i]! + (1 - b1) * gd;
        const v2 = b2 * v[i]! + (1 - b2) * gd * gd;
        const p2 = p[i]! - (LR / (1 - b1 ** t)) * (m2 / (Math.sqrt(v2) / Math.sqrt(1 - b2 ** t) + eps));
        const where = `${sp.name}[${i}]`;
        const gotM = after.tensors[`adam.m.${sp.name}`]!.data[i]!;
        const gotV = after.tensors[`adam.v.${sp.name}`]!.data[i]!;
        const gotP = after.tensors[sp.name]!.data[i]!;
        const gdScale = gScale + wd * Math.abs(p[i]!);
        assert.ok(Math.abs(gotM - m2) <= 2e-3 * gdScale, `${where}: m ${gotM}, reference ${m2}`);
        assert.ok(Math.abs(gotV - v2) <= 4e-3 * gdScale * gdScale + 1e-6 * v2, `${where}: v ${gotV}, reference ${v2}`);
        // The step itself (p2 - p is ~lr): relative to lr, with room for float32 gradient noise.
        assert.ok(Math.abs(gotP - p2) <= 2e-3 * LR, `${where}: next weight ${gotP}, reference ${p2} (step ${p2 - p[i]!})`);
        checked++;
      }
    }
    assert.equal(checked, s.parameterCount);

    // BatchNorm running statistics: momentum 0.1, unbiased variance of this batch.
    for (const [prefix, st] of stats) {
      const rm = before.tensors[`${prefix}.bn.mean`]!.data;
      const rv = before.tensors[`${prefix}.bn.var`]!.data;
      for (let c = 0; c < st.mean.length; c++) {
        const wantM = 0.9 * rm[c]! + 0.1 * st.mean[c]!;
        const wantV = 0.9 * rv[c]! + 0.1 * st.biasedVar[c]! * (st.n / (st.n - 1));
        const gotM = after.tensors[`${prefix}.bn.mean`]!.data[c]!;
        const gotV = after.tensors[`${prefix}.bn.var`]!.data[c]!;
        assert.ok(Math.abs(gotM - wantM) <= 1e-5 * (1 + Math.abs(wantM)), `${prefix}.bn.mean[${c}]: ${gotM}, reference ${wantM}`);
        assert.ok(Math.abs(gotV - wantV) <= 1e-5 * (1 + Math.abs(wantV)), `${prefix}.bn.var[${c}]: ${gotV}, reference ${wantV} (n = ${st.n})`);
      }
    }
    assert.equal(stats.size, 6, 'every BatchNorm of the depth-1 UNet (enc0, enc1, dec0: two each) was checked');
  } finally {
    await s.release();
  }
});
