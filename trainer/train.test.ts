/**
 * End to end on a tiny synthetic SIIM set: the loss falls, the exported model passes parity and
 * validates as a manifest, the report files exist, and a resumed run continues exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { generateSiimDataset, siimImage } from '../synth/index.ts';
import { referenceMask, referenceProbabilities, releaseReferenceSessions } from '../core/engine/testing/reference.ts';
import { assignFolds } from './folds.ts';
import { parseManifest } from '../core/manifest.ts';
import { NO_AUGMENT } from './augment.ts';
import { DEFAULTS, type TrainConfig } from './config.ts';
import { loadRunCheckpoint, saveRunCheckpoint } from './checkpoint-file.ts';
import { LOSS_SETS } from './model/loss-set.ts';
import type { EpochMetrics } from './run/types.ts';

import { train } from './train.ts';

/** Low enough that this 4-epoch model's validation Dice is neither 0 nor 1 and moves between epochs (best epoch 3 of 4). */
const THRESHOLD = 0.05;
const DATASET = { negativeFraction: 0.3, minLesionFraction: 0.02 };

/** Kaggle's per-image Dice: 1 when both masks are empty. */
function imageDice(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let inter = 0;
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ? 1 : 0;
    const y = b[i] ? 1 : 0;
    inter += x & y;
    sa += x;
    sb += y;
  }
  return sa + sb === 0 ? 1 : (2 * inter) / (sa + sb);
}

async function setup(t: { after: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'trainer-e2e-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const data = join(dir, 'data');
  const ds = await generateSiimDataset({ outDir: data, count: 20, size: 96, seed: 11, ...DATASET });
  return { dir, data, ds };
}

function tinyConfig(dir: string, data: string, over: Partial<TrainConfig> = {}): TrainConfig {
  return {
    data,
    layout: 'siim',
    height: 64,
    width: 64,
    epochs: 4,
    batchSize: 4,
    fold: 0,
    folds: 5,
    lr: 3e-3,
    milestones: [3],
    gamma: 0.5,
    seed: 3,
    device: 'cpu',
    out: join(dir, 'models'),
    name: 'tiny',
    version: '1',
    force: false,
    depth: 2,
    baseChannels: 8,
    upsample: 'transpose',
    loss: { bce: 3, dice: 1, focal: 4 },
    weightDecay: 0,
    intensity: { kind: 'minmax' },
    resize: 'bilinear',
    normalize: 'none',
    outputPrior: 'auto',
    augment: { ...NO_AUGMENT, hflip: 0.5, rotate: 5 },
    threads: 1,
    cacheDir: join(dir, 'cache'),
    cacheDtype: 'uint16',
    workDir: join(dir, 'run'),
    decodeConcurrency: 2,
    prefetch: 2,
    threshold: THRESHOLD,
    minArea: 0,
    labels: ['pneumothorax'],
    description: '',
    intendedUse: 'test model',
    validateOriginalEachEpoch: true,
    overlayExamples: 4,
    parityTolerance: DEFAULTS.parityTolerance,
    paritySamples: 4,
    ...over,
  };
}

test('tiny run: loss falls, export passes parity, manifest validates, report written', async (t) => {
  const { dir, data, ds } = await setup(t);
  const warnings: string[] = [];
  // What the work directory holds when each epoch is reported: the live curves and scalars, rewritten.
  const live: { epoch: number; rows: string[]; curvesBytes: number }[] = [];
  const r = await train(tinyConfig(dir, data), {
    warn: (m) => warnings.push(m),
    epochEnd: (m) => live.push({ epoch: m.epoch, rows: readFileSync(join(dir, 'run', 'scalars.csv'), 'utf8').trim().split('\n'), curvesBytes: statSync(join(dir, 'run', 'training-curves.png')).size }),
  });
  assert.equal(r.history.length, 4);
  const losses = r.history.map((h) => h.trainLoss);
  assert.ok(losses[3]! < 0.8 * losses[0]!, `the loss falls by at least 20 % in 4 epochs: ${losses.map((l) => l.toFixed(3)).join(' -> ')}`);
  assert.equal(r.counts.train + r.counts.val, 20);
  assert.deepEqual(warnings, []);

  // The best epoch is the first with the highest validation Dice, and each epoch's `best` flag says
  // whether it improved on every earlier one.
  const dices = r.history.map((h) => h.valDice);
  assert.equal(r.bestEpoch, dices.indexOf(Math.max(...dices)) + 1, `best epoch of ${dices.join(', ')}`);
  assert.equal(r.bestDice, dices[r.bestEpoch - 1]);
  r.history.forEach((h, i) => assert.equal(h.best, h.valDice > Math.max(-Infinity, ...dices.slice(0, i)), `epoch ${i + 1} best flag`));
  assert.equal(r.bestDiceOriginal, r.history[r.bestEpoch - 1]!.valDiceOriginal);

  // The exported model, run outside the trainer (decode -> toTensor -> plain ORT session -> float64
  // sigmoid -> own bilinear -> p > threshold) on the validation fold against the phantoms' own masks,
  // reproduces the best epoch's validation Dice at original resolution: so export parity holds for
  // the images that were scored, and the trainer's Dice is the Kaggle per-image mean.
  const exported = parseManifest(JSON.parse(await readFile(r.files.manifest, 'utf8')));
  const trainImages = ds.images.filter((im) => im.split === 'train');
  const fold = assignFolds(trainImages.map((im) => ({ id: im.imageId, hasMask: im.components > 0 })), 5, 3);
  const val = trainImages.map((im, index) => ({ im, index })).filter((_, k) => fold[k] === 0);
  assert.equal(val.length, r.counts.val);
  let sum = 0;
  for (const { im, index } of val) {
    const phantom = siimImage(11, 'train', index, 96, DATASET);
    assert.equal(phantom.sopInstanceUid, im.imageId, 'the phantom regenerated is this image');
    const ref = await referenceProbabilities(r.files.onnx, exported, new Uint8Array(await readFile(join(data, im.file))));
    sum += imageDice(referenceMask(ref, THRESHOLD).data, phantom.phantom.mask.data);
  }
  await releaseReferenceSessions();
  const recomputed = sum / val.length;
  assert.ok(Math.abs(recomputed - r.bestDiceOriginal) < 5e-3, `validation Dice (original size) ${r.bestDiceOriginal}, recomputed from the exported model ${recomputed}`);
  assert.ok(r.parity.maxAbsDiff <= 1e-4, `parity ${r.parity.maxAbsDiff}`);

  const manifest = parseManifest(JSON.parse(await readFile(r.files.manifest, 'utf8')));
  assert.equal(manifest.name, 'tiny');
  assert.deepEqual(manifest.input.shape.slice(1), [1, 64, 64]);
  assert.equal(manifest.output.activation, 'logits');
  assert.equal(manifest.preprocessing.size.height, 64);
  assert.equal(manifest.training?.bestEpoch, r.bestEpoch);
  assert.equal(manifest.training?.dataset?.images, 20);
  const { createHash } = await import('node:crypto');
  assert.equal(manifest.onnx.sha256, createHash('sha256').update(await readFile(r.files.onnx)).digest('hex'));

  for (const png of [r.files.curves, r.files.overlays]) {
    const meta = await sharp(png).metadata();
    assert.equal(meta.format, 'png');
    assert.ok((meta.width ?? 0) > 200);
  }
  const log = JSON.parse(await readFile(r.files.log, 'utf8'));
  assert.equal(log.history.length, 4);
  // The all-empty baseline: the fraction of validation images without a mask, every epoch and in the log.
  const emptyVal = val.filter(({ im }) => im.components === 0).length / val.length;
  for (const h of r.history) assert.ok(Math.abs(h.valBaseline! - emptyVal) < 1e-9, `baseline ${h.valBaseline} vs ${emptyVal}`);
  assert.ok(Math.abs(log.best.allEmptyBaseline - emptyVal) < 1e-9);
  // Scalars beside the model, and the live curves and scalars in the work directory.
  const csv = (await readFile(r.files.scalars, 'utf8')).trim().split('\n');
  assert.equal(csv.length, 5, 'a header and one row per epoch');
  assert.match(csv[0]!, /^epoch,lr,train_loss,train_bce,train_dice,train_focal,val_loss,val_loss_bce,val_loss_dice,val_loss_focal,val_dice,val_dice_original,val_baseline_all_empty,/);
  // The validation loss: the objective's terms every epoch, in the CSV as recorded, in the checkpoint history.
  const header = csv[0]!.split(',');
  r.history.forEach((h, i) => {
    assert.deepEqual(Object.keys(h.valLosses!), [...LOSS_SETS.sigmoid.names]);
    assert.ok(Number.isFinite(h.valLoss) && h.valLoss! > 0, `epoch ${h.epoch} validation loss ${h.valLoss}`);
    const row = csv[i + 1]!.split(',');
    assert.equal(Number(row[header.indexOf('val_loss')]), h.valLoss);
    for (const n of LOSS_SETS.sigmoid.names) assert.equal(Number(row[header.indexOf(`val_loss_${n}`)]), h.valLosses![n]);
    assert.ok(Math.abs(h.valLoss! - Math.max(1e-5, 3 * h.valLosses!.bce! + h.valLosses!.dice! + 4 * h.valLosses!.focal!)) < 1e-5, 'the run weights make the total');
  });
  assert.deepEqual((await loadRunCheckpoint(r.files.lastCheckpoint)).state.history.map((h) => h.valLoss), r.history.map((h) => h.valLoss));
  // Curves and scalars were in the work directory at the end of every epoch, one row per epoch so far.
  assert.deepEqual(live.map((l) => l.epoch), [1, 2, 3, 4]);
  for (const l of live) {
    assert.equal(l.rows.length, l.epoch + 1, `scalars.csv at epoch ${l.epoch}`);
    assert.ok(l.rows.at(-1)!.split(',')[header.indexOf('val_loss')] !== '', `epoch ${l.epoch} row has its validation loss`);
    assert.ok(l.curvesBytes > 0);
  }
  assert.deepEqual(await readFile(join(dir, 'run', 'scalars.csv'), 'utf8'), await readFile(r.files.scalars, 'utf8'));
  assert.equal((await sharp(join(dir, 'run', 'training-curves.png')).metadata()).format, 'png');
  assert.ok((await stat(r.files.lastCheckpoint)).size > 0);

  // A resumed run continues exactly: 2 epochs, then resume to 4, equals the straight 4-epoch run.
  const cfg2 = tinyConfig(dir, data, { epochs: 2, workDir: join(dir, 'run2'), out: join(dir, 'models2') });
  const first = await train(cfg2);
  assert.equal(first.cache.decodes, 0, 'the second run reuses the cache');
  // Kept for the old-format resume below (the resume next rewrites run2/).
  const twoEpochs = { last: await loadRunCheckpoint(first.files.lastCheckpoint), best: await loadRunCheckpoint(first.files.bestCheckpoint) };
  // The first run wrote tiny:1, so continuing it replaces that version: only with force.
  await assert.rejects(train({ ...cfg2, epochs: 4, resume: first.files.lastCheckpoint }), /tiny:1 already exists .*pass --force/);
  await assert.rejects(train({ ...cfg2, force: true, epochs: 4, lr: 1e-2, resume: first.files.lastCheckpoint }), /lr was 0\.003 in the checkpoint but is 0\.01 now/);
  await assert.rejects(train({ ...cfg2, force: true, epochs: 2, resume: first.files.lastCheckpoint }), /already has 2 epoch/);
  const resumed = await train({ ...cfg2, force: true, epochs: 4, resume: first.files.lastCheckpoint });
  assert.equal(resumed.history.length, 4);
  for (let e = 0; e < 4; e++) {
    assert.ok(Math.abs(resumed.history[e]!.trainLoss - r.history[e]!.trainLoss) < 1e-6, `epoch ${e + 1}: ${resumed.history[e]!.trainLoss} vs ${r.history[e]!.trainLoss}`);
    assert.ok(Math.abs(resumed.history[e]!.valDice - r.history[e]!.valDice) < 1e-6);
    assert.ok(Math.abs(resumed.history[e]!.valLoss! - r.history[e]!.valLoss!) < 1e-6, `epoch ${e + 1} validation loss`);
  }

  // A checkpoint written before the validation loss was recorded (and before the loss terms were
  // named: trainBce / trainDiceLoss / trainFocal) still resumes: its epochs keep no validation loss
  // (empty CSV cells, no validation points on the curves), the new epochs have it, training is exact.
  const oldCkpt = join(dir, 'old', 'last.ckpt');
  const { state } = twoEpochs.last;
  assert.equal(state.epochsDone, 2);
  const oldHistory = state.history.map(({ valLoss: _l, valLosses: _ls, trainLosses: t, ...h }) => ({ ...h, trainBce: t.bce, trainDiceLoss: t.dice, trainFocal: t.focal }));
  const oldState = { ...state, history: oldHistory as unknown as EpochMetrics[] };
  await saveRunCheckpoint(oldCkpt, oldState, twoEpochs.last.checkpoint);
  await saveRunCheckpoint(join(dir, 'old', 'best.ckpt'), oldState, twoEpochs.best.checkpoint);
  const fromOld = await train({ ...cfg2, force: true, epochs: 4, resume: oldCkpt, workDir: join(dir, 'run3') });
  assert.deepEqual(fromOld.history.map((h) => h.valLoss === undefined), [true, true, false, false]);
  assert.deepEqual(Object.keys(fromOld.history[0]!.trainLosses), ['bce', 'dice', 'focal']);
  for (let e = 0; e < 4; e++) assert.ok(Math.abs(fromOld.history[e]!.trainLoss - r.history[e]!.trainLoss) < 1e-6, `epoch ${e + 1} after an old checkpoint`);
  for (let e = 2; e < 4; e++) assert.ok(Math.abs(fromOld.history[e]!.valLoss! - r.history[e]!.valLoss!) < 1e-6);
  const oldCsv = (await readFile(join(dir, 'run3', 'scalars.csv'), 'utf8')).trim().split('\n').map((l) => l.split(','));
  const vl = oldCsv[0]!.indexOf('val_loss');
  assert.deepEqual(oldCsv.slice(1).map((row) => row[vl] === ''), [true, true, false, false]);
  assert.equal((await sharp(fromOld.files.curves).metadata()).format, 'png');
});
