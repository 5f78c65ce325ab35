/**
 * The validation loss: validate() reports, from the logits of its own pass, the training objective
 * of the run. The oracle is the loss function the training step is built from (model/loss.ts's
 * buildLoss, model/multiclass-loss.ts's buildMulticlassLoss) in a graph of its own, run by plain
 * onnxruntime over the same logits (predict's) and the same masks, batch by batch, and averaged
 * over images as the training loss is. Non-default weights (one of them 0) check that the run's
 * weights reach the validation total.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { pino } from 'pino';
import { Rng } from '../core/rng.ts';
import { PreprocessSpecSchema } from '../core/preprocess/spec.ts';
import { Graph, type Value } from './graph/builder.ts';
import { encodeModel } from './graph/onnx/encode.ts';
import type { Batch, BatchLoader } from './data/loader.ts';
import type { PreparedSample } from './data/cache.ts';
import { buildLoss, type LossWeights } from './model/loss.ts';
import { lossSet } from './model/loss-set.ts';
import { buildMulticlassLoss, type MulticlassLossWeights } from './model/multiclass-loss.ts';
import { createTrainingSession } from './session/training-session.ts';
import type { TrainingSession } from './session/types.ts';
import { validate } from './validate.ts';

const S = 32;
const HW = S * S;
const spec = PreprocessSpecSchema.parse({ size: { height: S, width: S }, intensity: { kind: 'minmax' } });
const post = { threshold: 0.5, minArea: 0 };
/** Two batches of unequal size, so the image weighting of the batch means shows. */
const SIZES = [3, 2];

/** Noise images with a bright square; labels: the square is class 1 (or class 2 in odd images), else 0. */
function batches(classes: number, seed: number): Batch[] {
  const rng = new Rng(seed);
  let id = 0;
  return SIZES.map((n) => {
    const images = new Float32Array(n * HW);
    const labels = new Uint8Array(n * HW);
    for (let k = 0; k < n; k++) {
      const size = 6 + Math.floor(rng.next() * 10);
      const r0 = Math.floor(rng.next() * (S - size));
      const c0 = Math.floor(rng.next() * (S - size));
      for (let r = 0; r < S; r++) {
        for (let c = 0; c < S; c++) {
          const inside = r >= r0 && r < r0 + size && c >= c0 && c < c0 + size;
          images[k * HW + r * S + c] = (inside ? 0.8 : 0.2) + (rng.next() - 0.5) * 0.3;
          labels[k * HW + r * S + c] = inside ? (classes > 2 && k % 2 ? 2 : 1) : 0;
        }
      }
    }
    // The step's targets: 0/1 per channel (sigmoid: the single foreground channel; softmax: one-hot).
    const masks = new Float32Array(n * classes * HW);
    for (let k = 0; k < n; k++) {
      for (let i = 0; i < HW; i++) {
        const l = labels[k * HW + i]!;
        if (classes === 1) masks[k * HW + i] = l ? 1 : 0;
        else masks[(k * classes + l) * HW + i] = 1;
      }
    }
    const samples = Array.from({ length: n }, () => ({ id: `img${id++}`, meta: { hasMask: true, origRows: S, origCols: S } }) as unknown as PreparedSample);
    return { images, masks, n, samples, ...(classes > 1 ? { labels } : {}) };
  });
}

/** A loader stand-in over fixed batches (validate reads batchesPerEpoch and epoch(0)). */
function loaderOf(bs: Batch[]): BatchLoader {
  return {
    batchesPerEpoch: () => bs.length,
    epoch: async function* () {
      yield* bs;
    },
  } as unknown as BatchLoader;
}

/** The oracle: the training loss function alone, over logits and masks fed in, run by plain ORT. */
async function oracle(classes: number, build: (g: Graph, logits: Value, target: Value) => { total: Value; terms: Record<string, Value> }, names: readonly string[]) {
  const g = new Graph('oracle_loss', 17);
  const x = g.input('x', 'float32', ['N', classes, S, S]);
  const t = g.input('t', 'float32', ['N', classes, S, S]);
  const loss = build(g, x, t);
  g.output(loss.total, 'total');
  for (const n of names) g.output(loss.terms[n]!, `term_${n}`);
  const s = await ort.InferenceSession.create(encodeModel(g));
  return {
    async run(session: TrainingSession, bs: Batch[]) {
      const sums: Record<string, number> = { total: 0, ...Object.fromEntries(names.map((n) => [n, 0])) };
      let images = 0;
      for (const b of bs) {
        const logits = (await session.predict(b.images, b.n)).slice();
        const out = await s.run({ x: new ort.Tensor('float32', logits, [b.n, classes, S, S]), t: new ort.Tensor('float32', b.masks, [b.n, classes, S, S]) });
        sums.total! += Number(out.total!.data[0]) * b.n;
        for (const n of names) sums[n]! += Number(out[`term_${n}`]!.data[0]) * b.n;
        images += b.n;
      }
      return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / images]));
    },
    release: () => s.release(),
  };
}

const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${what}: validate ${a}, oracle ${b}`);

/** A few Adam steps, so the logits are not the initial ones. */
async function trainSome(session: TrainingSession, bs: Batch[]): Promise<void> {
  for (let i = 0; i < 3; i++) for (const b of bs) await session.step(b.images, b.masks, b.n, 1e-2);
}

test('sigmoid: the validation loss is the training loss (buildLoss, the run weights) over predict logits, image-weighted', async (t) => {
  const weights: LossWeights = { bce: 2, dice: 0.5, focal: 0 };
  const session = await createTrainingSession({
    unet: { depth: 2, baseChannels: 4, inChannels: 1, classes: 1, upsample: 'transpose' },
    height: S,
    width: S,
    loss: weights,
    device: 'cpu',
    seed: 3,
    intraOpThreads: 1,
    logger: pino({ level: 'silent' }),
  });
  t.after(() => session.release());
  const bs = batches(1, 5);
  await trainSome(session, bs);
  const r = await validate(session, loaderOf(bs), spec, post, { original: false });
  const names = lossSet(false).names;
  assert.deepEqual(Object.keys(r.losses), [...names], 'the terms of the sigmoid set, in its order');
  const o = await oracle(1, (g, x, tt) => buildLoss(g, x, tt, weights, 1), names);
  t.after(() => o.release());
  const want = await o.run(session, bs);
  close(r.loss, want.total!, 'total');
  for (const n of names) close(r.losses[n]!, want[n]!, n);
  assert.ok(r.losses.focal! > 0, 'a weight-0 term is still reported');
  close(r.loss, Math.max(1e-5, 2 * r.losses.bce! + 0.5 * r.losses.dice!), 'weighted total of the batch means');
  // Not a mean of the two batch figures: weighted by images (3 and 2).
  const perBatch = await Promise.all(bs.map(async (b) => (await o.run(session, [b])).total!));
  close(r.loss, (3 * perBatch[0]! + 2 * perBatch[1]!) / 5, 'image-weighted mean');
});

test('softmax: the validation loss is the multi-class training loss (buildMulticlassLoss, background 0) over predict logits', async (t) => {
  const weights: MulticlassLossWeights = { ce: 1, dice: 2, focal: 0.5 };
  const session = await createTrainingSession({
    unet: { depth: 2, baseChannels: 4, inChannels: 1, classes: 3, upsample: 'transpose' },
    height: S,
    width: S,
    loss: weights,
    softmax: { background: 0 },
    device: 'cpu',
    seed: 4,
    intraOpThreads: 1,
    logger: pino({ level: 'silent' }),
  });
  t.after(() => session.release());
  const bs = batches(3, 6);
  await trainSome(session, bs);
  const r = await validate(session, loaderOf(bs), spec, post, { original: false, softmax: { labels: ['background', 'a', 'b'], background: 0 } });
  const names = lossSet(true).names;
  assert.deepEqual(Object.keys(r.losses), [...names], 'the terms of the softmax set, in its order');
  const o = await oracle(3, (g, x, tt) => buildMulticlassLoss(g, x, tt, { weights, diceSmooth: 1, background: 0 }), names);
  t.after(() => o.release());
  const want = await o.run(session, bs);
  close(r.loss, want.total!, 'total');
  for (const n of names) close(r.losses[n]!, want[n]!, n);
});
