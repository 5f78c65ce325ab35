import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { Graph } from '../graph/builder.ts';
import { gradCheck } from '../graph/grads/gradcheck.ts';
import { encodeModel } from '../graph/onnx/encode.ts';
import { buildComboLoss, LOSS_NAMES } from './loss.ts';
import { Rng } from '../../core/rng.ts';
import { gaussian } from './gaussian.ts';

/** Reference ComboLoss written directly from the Losses.py definitions, in float64. */
function referenceComboLoss(x: Float32Array, t: Float32Array, n: number, k: number, hw: number, w: { bce: number; dice: number; focal: number }, smooth: number) {
  let bce = 0;
  let focal = 0;
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    bce += Math.max(v, 0) - v * t[i]! + Math.log(1 + Math.exp(-Math.abs(v)));
    const p = Math.min(Math.max(sig(v), 1e-8), 1 - 1e-8);
    const tt = Math.min(Math.max(t[i]!, 1e-8), 1 - 1e-8);
    const pt = (1 - tt) * (1 - p) + tt * p;
    focal += -((1 - pt) ** 2) * Math.log(pt);
  }
  bce /= x.length;
  focal /= x.length;
  let dice = 0;
  for (let c = 0; c < k; c++) {
    let inter = 0;
    let sp = 0;
    let st = 0;
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < hw; i++) {
        const idx = (b * k + c) * hw + i;
        const p = sig(x[idx]!);
        inter += p * t[idx]!;
        sp += p;
        st += t[idx]!;
      }
    }
    dice += 1 - (2 * inter + smooth) / (sp + st + smooth);
  }
  dice /= k;
  return { bce, dice, focal, total: Math.max(w.bce * bce + w.dice * dice + w.focal * focal, 1e-5) };
}

function sample(n: number, k: number, hw: number, seed: number) {
  const rng = new Rng(seed);
  const normal = gaussian(rng);
  const x = Float32Array.from({ length: n * k * hw }, () => normal() * 3);
  const t = Float32Array.from({ length: n * k * hw }, () => (rng.next() < 0.3 ? 1 : 0));
  return { x, t };
}

test('ComboLoss values (bce 3 / dice 1 / focal 4) match a direct transcription of the winner semantics', async () => {
  const [n, k, h, w] = [2, 2, 4, 5];
  const weights = { bce: 3, dice: 1, focal: 4 };
  for (const smooth of [1, 1e-5]) {
    const g = new Graph('loss');
    const logits = g.input('logits', 'float32', ['N', k, h, w]);
    const target = g.input('target', 'float32', ['N', k, h, w]);
    const l = buildComboLoss(g, logits, target, weights, smooth);
    g.output(l.total, 'total');
    for (const name of LOSS_NAMES) g.output(l.terms[name], name);
    const s = await ort.InferenceSession.create(encodeModel(g));
    const { x, t } = sample(n, k, h * w, 3);
    const out = await s.run({ logits: new ort.Tensor('float32', x, [n, k, h, w]), target: new ort.Tensor('float32', t, [n, k, h, w]) });
    const ref = referenceComboLoss(x, t, n, k, h * w, weights, smooth);
    for (const name of ['total', 'bce', 'dice', 'focal'] as const) {
      const got = Number(out[name]!.data[0]);
      assert.ok(Math.abs(got - ref[name]) < 1e-5 * Math.max(1, Math.abs(ref[name])), `${name} (smooth ${smooth}): ${got} vs ${ref[name]}`);
    }
    await s.release();
  }
});

test('BCE-with-logits stays finite for large logits', async () => {
  const g = new Graph('loss');
  const logits = g.input('logits', 'float32', [1, 1, 1, 4]);
  const target = g.input('target', 'float32', [1, 1, 1, 4]);
  const l = buildComboLoss(g, logits, target, { bce: 1, dice: 0, focal: 0 });
  g.output(l.terms.bce, 'bce');
  const s = await ort.InferenceSession.create(encodeModel(g));
  const out = await s.run({
    logits: new ort.Tensor('float32', Float32Array.from([200, -200, 200, -200]), [1, 1, 1, 4]),
    target: new ort.Tensor('float32', Float32Array.from([1, 0, 0, 1]), [1, 1, 1, 4]),
  });
  assert.ok(Math.abs(Number(out['bce']!.data[0]) - 100) < 1e-3);
});

test('ComboLoss gradient with respect to the logits matches finite differences', async () => {
  const [n, k, h, w] = [2, 1, 3, 4];
  const { x, t } = sample(n, k, h * w, 5);
  // Keep logits where sigmoid is not saturated, so float32 central differences are meaningful.
  const xs = Array.from(x, (v) => Math.max(-4, Math.min(4, v)));
  const r = await gradCheck({
    inputs: [
      { name: 'logits', dims: [n, k, h, w], data: xs },
      { name: 'target', dims: [n, k, h, w], data: t, wrt: false },
    ],
    build: (g, [lg, tg]) => buildComboLoss(g, lg!, tg!, { bce: 3, dice: 1, focal: 4 }).total,
    scalarOutput: true,
    dtype: 'float32',
    eps: 1e-2,
    rtol: 3e-2,
    atol: 1e-4,
  });
  assert.equal(r.checked, n * k * h * w);
  assert.deepEqual(r.failures, [], JSON.stringify(r.worst));
});

test('bad loss weights are refused', () => {
  const g = new Graph('loss');
  const a = g.input('a', 'float32', [1, 1, 2, 2]);
  assert.throws(() => buildComboLoss(g, a, a, { bce: 0, dice: 0, focal: 0 }), /at least one loss weight/);
  assert.throws(() => buildComboLoss(g, a, a, { bce: -1, dice: 0, focal: 1 }), /bce must be/);
});

test('the loss terms are one registry: names, seed weights, one graph output each', async () => {
  const { LOSS_TERMS, DEFAULT_LOSS_WEIGHTS, lossValues, formatLosses } = await import('./loss.ts');
  assert.deepEqual(LOSS_NAMES, ['bce', 'dice', 'focal']);
  assert.deepEqual(DEFAULT_LOSS_WEIGHTS, { bce: 3, dice: 1, focal: 4 });
  assert.equal(LOSS_TERMS.length, LOSS_NAMES.length);
  assert.deepEqual(lossValues((n) => n.length), { bce: 3, dice: 4, focal: 5 });
  assert.equal(formatLosses({ bce: 0.5, dice: 0.25, focal: 1 }, 2), 'bce 0.50 dice 0.25 focal 1.00');
  const g = new Graph('loss');
  const logits = g.input('logits', 'float32', [1, 1, 2, 2]);
  const l = buildComboLoss(g, logits, g.input('target', 'float32', [1, 1, 2, 2]), DEFAULT_LOSS_WEIGHTS);
  assert.deepEqual(Object.keys(l.terms), LOSS_NAMES);
});
