import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { Graph } from '../graph/builder.ts';
import { gradCheck } from '../graph/grads/gradcheck.ts';
import { encodeModel } from '../graph/onnx/encode.ts';
import { Rng } from '../../core/rng.ts';
import { gaussian } from './gaussian.ts';
import { buildMulticlassLoss, MULTICLASS_LOSS_NAMES, oneHotTarget, type MulticlassLossWeights } from './multiclass-loss.ts';

interface RefOpts {
  w: MulticlassLossWeights;
  smooth: number;
  includeBackground: boolean;
  gamma: number;
}

/** Reference written from the definitions, float64, pixel by pixel. */
function reference(x: ArrayLike<number>, t: ArrayLike<number>, n: number, c: number, hw: number, o: RefOpts) {
  const p = new Float64Array(x.length);
  const logp = new Float64Array(x.length);
  let ce = 0;
  let focal = 0;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < hw; i++) {
      const at = (k: number) => (b * c + k) * hw + i;
      let m = -Infinity;
      for (let k = 0; k < c; k++) m = Math.max(m, x[at(k)]!);
      let s = 0;
      for (let k = 0; k < c; k++) s += Math.exp(x[at(k)]! - m);
      let tl = 0;
      for (let k = 0; k < c; k++) {
        logp[at(k)] = x[at(k)]! - m - Math.log(s);
        p[at(k)] = Math.exp(logp[at(k)]!);
        tl += t[at(k)]! * logp[at(k)]!;
      }
      ce -= tl;
      focal -= (1 - Math.exp(tl)) ** o.gamma * tl;
    }
  }
  ce /= n * hw;
  focal /= n * hw;
  let dice = 0;
  let counted = 0;
  for (let k = 0; k < c; k++) {
    if (k === 0 && !o.includeBackground) continue;
    let inter = 0;
    let sp = 0;
    let st = 0;
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < hw; i++) {
        const j = (b * c + k) * hw + i;
        inter += p[j]! * t[j]!;
        sp += p[j]!;
        st += t[j]!;
      }
    }
    dice += 1 - (2 * inter + o.smooth) / (sp + st + o.smooth);
    counted++;
  }
  dice /= counted;
  return { ce, dice, focal, total: Math.max(o.w.ce * ce + o.w.dice * dice + o.w.focal * focal, 1e-5) };
}

/** Logits and one-hot targets of a random label map; class 3 absent from the batch (an empty class). */
function sample(n: number, c: number, hw: number, seed: number, scale = 3) {
  const rng = new Rng(seed);
  const normal = gaussian(rng);
  const x = Array.from({ length: n * c * hw }, () => normal() * scale);
  const labels = Array.from({ length: n * hw }, () => Math.floor(rng.next() * Math.min(c, 3)));
  const t = new Array<number>(n * c * hw).fill(0);
  for (let b = 0; b < n; b++) for (let i = 0; i < hw; i++) t[(b * c + labels[b * hw + i]!) * hw + i] = 1;
  return { x, t, labels };
}

test('multi-class loss values (ce / dice / focal, background in or out of Dice) match a direct transcription', async () => {
  const [n, c, h, w] = [2, 4, 3, 5];
  const { x, t } = sample(n, c, h * w, 3);
  const cases: RefOpts[] = [
    { w: { ce: 1, dice: 1, focal: 0 }, smooth: 1, includeBackground: false, gamma: 2 },
    { w: { ce: 0.5, dice: 2, focal: 3 }, smooth: 1e-5, includeBackground: true, gamma: 2 },
    { w: { ce: 0, dice: 0, focal: 1 }, smooth: 1, includeBackground: false, gamma: 1.5 },
  ];
  for (const o of cases) {
    const g = new Graph('mc-loss');
    const logits = g.input('logits', 'float64', ['N', c, h, w]);
    const target = g.input('target', 'float64', ['N', c, h, w]);
    const l = buildMulticlassLoss(g, logits, target, { weights: o.w, diceSmooth: o.smooth, diceIncludeBackground: o.includeBackground, focalGamma: o.gamma });
    g.output(l.total, 'total');
    for (const name of MULTICLASS_LOSS_NAMES) g.output(l.terms[name], name);
    const s = await ort.InferenceSession.create(encodeModel(g));
    const out = await s.run({ logits: new ort.Tensor('float64', Float64Array.from(x), [n, c, h, w]), target: new ort.Tensor('float64', Float64Array.from(t), [n, c, h, w]) });
    await s.release();
    const ref = reference(x, t, n, c, h * w, o);
    for (const name of ['total', 'ce', 'dice', 'focal'] as const) {
      const got = Number(out[name]!.data[0]);
      assert.ok(Math.abs(got - ref[name]) < 1e-10 * Math.max(1, Math.abs(ref[name])), `${name} ${JSON.stringify(o)}: ${got} vs ${ref[name]}`);
    }
  }
});

test('cross-entropy stays finite and exact for huge logits (LogSoftmax, no log of a probability)', async () => {
  const g = new Graph('mc-loss');
  const logits = g.input('logits', 'float32', [1, 3, 1, 2]);
  const target = g.input('target', 'float32', [1, 3, 1, 2]);
  const l = buildMulticlassLoss(g, logits, target, { weights: { ce: 1, dice: 0, focal: 0 } });
  g.output(l.terms.ce, 'ce');
  const s = await ort.InferenceSession.create(encodeModel(g));
  // pixel 0: true class 0 has logit 300 vs 0, 0 -> ce ~ 0; pixel 1: true class 2 has -300 vs 300 -> ce 600.
  const out = await s.run({
    logits: new ort.Tensor('float32', Float32Array.from([300, 300, 0, -300, 0, -300]), [1, 3, 1, 2]),
    target: new ort.Tensor('float32', Float32Array.from([1, 0, 0, 0, 0, 1]), [1, 3, 1, 2]),
  });
  await s.release();
  assert.ok(Math.abs(Number(out['ce']!.data[0]) - 300) < 1e-3, String(out['ce']!.data[0]));
});

test('whole multi-class loss (ce + dice + focal) gradient w.r.t. the logits matches finite differences', async (t) => {
  const [n, c, h, w] = [2, 4, 3, 4];
  const { x, t: target } = sample(n, c, h * w, 5, 2);
  for (const [weights, includeBackground] of [
    [{ ce: 1, dice: 1, focal: 1 }, false],
    [{ ce: 0.3, dice: 2, focal: 0 }, true],
  ] as const) {
    const r = await gradCheck({
      inputs: [
        { name: 'logits', dims: [n, c, h, w], shape: ['N', c, h, w], data: x },
        { name: 'target', dims: [n, c, h, w], shape: ['N', c, h, w], data: target, wrt: false },
      ],
      build: (g, [lg, tg]) => buildMulticlassLoss(g, lg!, tg!, { weights, diceIncludeBackground: includeBackground }).total,
      scalarOutput: true,
      dtype: 'float64',
    });
    assert.equal(r.checked, n * c * h * w);
    assert.deepEqual(r.failures, [], JSON.stringify(r.worst));
    t.diagnostic(`${JSON.stringify(weights)} background ${includeBackground ? 'in' : 'out'}: worst |analytic - numeric| = ${Math.abs(r.worst!.analytic - r.worst!.numeric).toExponential(2)}`);
  }
});

test('oneHotTarget turns an int64 label map into the one-hot target the loss takes', async () => {
  const [n, c, h, w] = [2, 4, 3, 5];
  const { x, t, labels } = sample(n, c, h * w, 7);
  const g = new Graph('onehot');
  const logits = g.input('logits', 'float32', ['N', c, h, w]);
  const lab = g.input('labels', 'int64', ['N', h, w]);
  const oh = oneHotTarget(g, lab, c, logits);
  assert.deepEqual(oh.shape, ['N', c, h, w]);
  const total = buildMulticlassLoss(g, logits, oh).total;
  g.output(oh, 'onehot');
  g.output(total, 'total');
  const s = await ort.InferenceSession.create(encodeModel(g));
  const out = await s.run({ logits: new ort.Tensor('float32', Float32Array.from(x), [n, c, h, w]), labels: new ort.Tensor('int64', BigInt64Array.from(labels.map(BigInt)), [n, h, w]) });
  await s.release();
  assert.deepEqual(Array.from(out['onehot']!.data as Float32Array), t);
  const ref = reference(x, t, n, c, h * w, { w: { ce: 1, dice: 1, focal: 0 }, smooth: 1, includeBackground: false, gamma: 2 });
  assert.ok(Math.abs(Number(out['total']!.data[0]) - ref.total) < 1e-5);
});

test('bad multi-class loss options are refused', () => {
  const g = new Graph('bad');
  const a = g.input('a', 'float32', [1, 3, 2, 2]);
  assert.throws(() => buildMulticlassLoss(g, a, a, { weights: { ce: 0, dice: 0, focal: 0 } }), /at least one loss weight/);
  assert.throws(() => buildMulticlassLoss(g, a, a, { weights: { ce: -1 } }), /ce must be/);
  assert.throws(() => buildMulticlassLoss(g, a, a, { background: 3 }), /background/);
  const one = g.input('one', 'float32', [1, 1, 2, 2]);
  assert.throws(() => buildMulticlassLoss(g, one, one), /at least 2 classes/);
  const sym = g.input('sym', 'float32', [1, 'C', 2, 2]);
  assert.throws(() => buildMulticlassLoss(g, sym, sym), /static/);
});
