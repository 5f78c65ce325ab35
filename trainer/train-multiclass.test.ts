/**
 * Multi-class end to end on a tiny synthetic label-map set (synth multiclass: background / lung /
 * heart / pneumothorax): the softmax loss falls by a stated factor, per-class Dice is reported each
 * epoch, the export passes parity on softmax probabilities, the manifest says softmax with the
 * classes as labels and the background named, and the exported model served through
 * core/segmentation's processor gives one mask per non-background class. Plus the CSV layout runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { generateMulticlassDataset, multiclassImage } from '../synth/multiclass.ts';
import { parseManifest } from '../core/manifest.ts';
import { decodeDicom } from '../core/dicom/decode.ts';
import { dice } from '../core/metrics/index.ts';
import { createMask } from '../core/mask.ts';
import { SegmentationProcessor } from '../core/segmentation/processor.ts';
import { NO_AUGMENT } from './augment.ts';
import { DEFAULTS, parseConfig, type TrainConfigInput } from './config.ts';
import { train } from './train.ts';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const CLASSES = ['background', 'lung', 'heart', 'pneumothorax'];

function tinyConfig(dir: string, data: string, over: Partial<TrainConfigInput> = {}) {
  return parseConfig({
    data,
    layout: 'labelmap',
    height: 64,
    width: 64,
    epochs: 8,
    batchSize: 4,
    folds: 4,
    lr: 5e-3,
    milestones: [6],
    gamma: 0.5,
    seed: 3,
    out: join(dir, 'models'),
    name: 'tiny-mc',
    depth: 3,
    baseChannels: 8,
    augment: { ...NO_AUGMENT, hflip: 0.5, rotate: 5 },
    threads: 1,
    cacheDir: join(dir, 'cache'),
    workDir: join(dir, 'run'),
    overlayExamples: 4,
    paritySamples: 4,
    intendedUse: 'test model',
    ...over,
  } satisfies TrainConfigInput);
}

test('tiny multi-class run: loss falls, per-class Dice, softmax export passes parity, served masks per class', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'trainer-mc-e2e-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const data = join(dir, 'data');
  await generateMulticlassDataset({ outDir: data, layout: 'labelmap', count: 24, size: 64, seed: 5, transferSyntaxUid: EXPLICIT_LE });

  const infos: string[] = [];
  const r = await train(tinyConfig(dir, data), { info: (m) => infos.push(m) });
  const losses = r.history.map((h) => h.trainLoss);
  const ratio = losses[0]! / losses[losses.length - 1]!;
  console.log(`multi-class loss ${losses.map((l) => l.toFixed(3)).join(' -> ')} (x${ratio.toFixed(2)} lower); parity ${r.parity.maxAbsDiff.toExponential(2)}; best epoch ${r.bestEpoch} Dice ${r.bestDice.toFixed(3)} ${JSON.stringify(r.bestClassDice)} original ${JSON.stringify(r.bestClassDiceOriginal)}`);
  // The stated factor: eight epochs of 18 images take the loss to at most half its first-epoch value.
  assert.ok(ratio >= 2, `loss fell only x${ratio.toFixed(2)}: ${losses.join(' -> ')}`);
  assert.deepEqual(Object.keys(r.history[0]!.trainLosses), ['ce', 'dice', 'focal'], 'the softmax loss terms flow to the epoch metrics');
  for (const h of r.history) {
    assert.deepEqual(Object.keys(h.valLosses!), ['ce', 'dice', 'focal'], 'the validation loss has the softmax terms');
    assert.ok(Math.abs(h.valLoss! - (h.valLosses!.ce! + h.valLosses!.dice!)) < 1e-5, `validation total = ce + dice (focal weight 0): ${h.valLoss}`);
  }
  const valLosses = r.history.map((h) => h.valLoss!);
  assert.ok(valLosses.at(-1)! < valLosses[0]!, `the validation loss falls: ${valLosses.map((l) => l.toFixed(3)).join(' -> ')}`);
  assert.deepEqual(Object.keys(r.history[0]!.valClassDice!), ['lung', 'heart', 'pneumothorax'], 'per-class Dice for the non-background classes');
  for (const h of r.history) {
    const m = Object.values(h.valClassDice!);
    assert.ok(Math.abs(h.valDice - m.reduce((a, b) => a + b, 0) / m.length) < 1e-9, 'the epoch criterion is the mean over non-background classes');
  }
  assert.ok(r.bestClassDice!.lung! > 0.7, `lung Dice ${r.bestClassDice!.lung}`);
  assert.ok(r.parity.maxAbsDiff <= 1e-4, `parity ${r.parity.maxAbsDiff}`);
  assert.ok(infos.some((m) => /classes: 0 background/.test(m)), infos.join('\n'));

  const manifest = parseManifest(JSON.parse(await readFile(r.files.manifest, 'utf8')));
  assert.equal(manifest.output.activation, 'softmax');
  assert.deepEqual(manifest.labels, CLASSES);
  assert.equal(manifest.background, 'background');
  assert.deepEqual(manifest.output.shape.slice(1), [4, 64, 64]);
  assert.deepEqual(manifest.training?.lossWeights, { ce: 1, dice: 1, focal: 0 });

  const log = JSON.parse(await readFile(r.files.log, 'utf8'));
  assert.deepEqual(Object.keys(log.best.classDice), ['lung', 'heart', 'pneumothorax']);
  assert.deepEqual(log.dataset.classes, CLASSES);
  for (const png of [r.files.curves, r.files.overlays]) assert.equal((await sharp(png).metadata()).format, 'png');

  // The exported model, served as the service serves it: processor from the manifest, ORT, argmax masks.
  const processor = SegmentationProcessor.fromManifest(manifest);
  assert.deepEqual(processor.maskLabels, ['lung', 'heart', 'pneumothorax']);
  const session = await ort.InferenceSession.create(join(r.modelDir, 'model.onnx'));
  const lungDice: number[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const stem = `SYN_CXR_${String(i + 1).padStart(5, '0')}`;
      const image = await decodeDicom(new Uint8Array(await readFile(join(data, 'images', `${stem}.dcm`))));
      const [x] = processor.preprocess(image);
      const out = await session.run({ [manifest.input.name]: new ort.Tensor('float32', x!, [1, 1, 64, 64]) });
      const masks = await processor.postprocess((out[manifest.output.name]!.data as Float32Array).slice(), undefined, { rows: image.rows, cols: image.columns });
      assert.deepEqual(masks.map((m) => m.label), ['lung', 'heart', 'pneumothorax']);
      for (let p = 0; p < 64 * 64; p++) assert.ok(masks.reduce((s, m) => s + m.mask.data[p]!, 0) <= 1, 'classes are exclusive');
      const truth = multiclassImage(5, i, 64).labels;
      lungDice.push(dice(masks[0]!.mask, createMask(64, 64, Uint8Array.from(truth, (v) => (v === 1 ? 1 : 0)))));
    }
  } finally {
    await session.release();
  }
  assert.ok(Math.min(...lungDice) > 0.6, `served lung Dice ${lungDice.map((d) => d.toFixed(3)).join(' ')}`);
});

test('kaggle-multiclass layout trains too (classes.json, CSV quirks), and a resumed run must keep its classes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'trainer-mc-csv-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const data = join(dir, 'data');
  await generateMulticlassDataset({ outDir: data, layout: 'csv', count: 12, size: 64, seed: 6, negativeFraction: 0.6, transferSyntaxUid: EXPLICIT_LE });
  const cfg = tinyConfig(dir, data, { layout: 'kaggle-multiclass', epochs: 2, folds: 3, depth: 2, loss: [1, 1, 0.5], validateOriginalEachEpoch: false });
  const r = await train(cfg);
  assert.equal(r.history.length, 2);
  assert.equal(r.counts.train + r.counts.val, 12);
  assert.deepEqual(Object.keys(r.history[1]!.trainLosses), ['ce', 'dice', 'focal']);
  assert.ok(r.history[1]!.trainLosses.focal! > 0);
  assert.ok(r.parity.maxAbsDiff <= DEFAULTS.parityTolerance);
  await assert.rejects(train({ ...cfg, force: true, classes: ['background', 'lung', 'heart', 'other'], labels: ['background', 'lung', 'heart', 'other'] }), /classes\.json lists background,lung,heart,pneumothorax but the run has classes/);
});
