/**
 * Mutually exclusive classes: the softmax activation, argmax masks (at model size and resampled to
 * the image), background left out, TTA, the triplet on a class's probability, and the manifest rules
 * for softmax models.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parseManifest } from '../manifest.ts';
import { toProbabilitiesInPlace } from './activation.ts';
import { hflipCHW } from './postprocess.ts';
import { SegmentationProcessor } from './processor.ts';

const spec = { size: { height: 8, width: 8 }, intensity: { kind: 'minmax' } } as never;
const labels = ['background', 'lung', 'heart'];
const processor = new SegmentationProcessor({ preprocessing: spec, activation: 'softmax', labels, background: 'background' });

/** Logits 3 x 8 x 8: background everywhere at 0, lung (2.0) in columns 0-3, heart (3.0) in rows 5-7 of columns 4-7. */
function logits(): Float32Array {
  const x = new Float32Array(3 * 64);
  for (let y = 0; y < 8; y++) {
    for (let c = 0; c < 8; c++) {
      if (c < 4) x[64 + y * 8 + c] = 2;
      else if (y >= 5) x[128 + y * 8 + c] = 3;
    }
  }
  return x;
}

test('softmax sums to 1 per pixel, matches exp/sum, and survives huge logits', () => {
  const x = Float32Array.from([1, 1000, -5, 1000, 2, 0]); // 3 channels x 2 pixels: (1, -5, 2) and (1000, 1000, 0)
  const p = toProbabilitiesInPlace(x.slice(), 'softmax', 3);
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(p[i]! + p[2 + i]! + p[4 + i]! - 1) < 1e-6);
  assert.ok(Math.abs(p[1]! - 0.5) < 1e-6 && Math.abs(p[3]! - 0.5) < 1e-6, 'two equal huge logits share the pixel');
  const ref = [Math.exp(1), Math.exp(-5), Math.exp(2)];
  const s = ref[0]! + ref[1]! + ref[2]!;
  assert.ok(Math.abs(p[0]! - ref[0]! / s) < 1e-6 && Math.abs(p[4]! - ref[2]! / s) < 1e-6);
});

test('argmax masks: one per non-background class, exclusive, at model size and resampled', async () => {
  const masks = await processor.postprocess(logits(), undefined, { rows: 8, cols: 8 });
  assert.deepEqual(masks.map((m) => m.label), ['lung', 'heart']);
  const [lung, heart] = masks;
  assert.equal(lung!.area, 32);
  assert.equal(heart!.area, 12);
  assert.deepEqual(heart!.bbox, [4, 5, 4, 3]);
  assert.equal(lung!.threshold, null, 'the argmax decides, not a threshold');
  for (let i = 0; i < 64; i++) assert.ok(lung!.mask.data[i]! + heart!.mask.data[i]! <= 1);
  const big = await processor.postprocess(logits(), undefined, { rows: 32, cols: 32 });
  // Resampled: the left half is lung; the boundary moves right by a little, since lung's interpolated
  // probability (0.79 -> 1/3) beats background's (0.11 -> 1/3) until both meet.
  const [bl, bh] = big;
  for (let y = 0; y < 32; y++) for (let x = 0; x < 16; x++) assert.equal(bl!.mask.data[y * 32 + x], 1, `lung at ${x},${y}`);
  assert.ok(bl!.area >= 16 * 32 && bl!.area <= 20 * 32, `lung area ${bl!.area}`);
  assert.ok(bh!.bbox![1] >= 17 && bh!.bbox![0] >= 16 && bh!.area > 100, `heart ${bh!.bbox} ${bh!.area}`);
  for (let i = 0; i < 32 * 32; i++) assert.ok(bl!.mask.data[i]! + bh!.mask.data[i]! <= 1);
});

test('TTA averages softmax probabilities of the un-flipped twin', async () => {
  const x = logits();
  const flippedOut = hflipCHW(x, 3, 8, 8); // what a flip-equivariant net gives for the flipped input
  const withTta = await processor.postprocess(x.slice(), flippedOut, { rows: 8, cols: 8 });
  const plain = await processor.postprocess(x.slice(), undefined, { rows: 8, cols: 8 });
  assert.deepEqual(withTta.map((m) => Array.from(m.mask.data)), plain.map((m) => Array.from(m.mask.data)));
  // A twin that disagrees everywhere (all lung) moves heart pixels whose averaged probability loses.
  const allLung = new Float32Array(3 * 64);
  allLung.fill(5, 64, 128);
  const mixed = await processor.postprocess(x.slice(), allLung, { rows: 8, cols: 8 });
  assert.equal(mixed[1]!.area, 0);
  assert.equal(mixed[0]!.area, 64);
});

test('triplet gate on a class probability; rules per class', async () => {
  // p(lung) = e^2 / (e^2 + 2) = 0.787 on its 32 px; p(heart) = e^3 / (e^3 + 2) = 0.909 on its 12 px.
  const loose = await processor.postprocess(logits(), undefined, { rows: 8, cols: 8, topThreshold: 0.75, minArea: 5 });
  assert.deepEqual(loose.map((m) => m.area), [32, 12]);
  const strict = await processor.postprocess(logits(), undefined, { rows: 8, cols: 8, topThreshold: 0.85, minArea: 5 });
  assert.deepEqual(strict.map((m) => m.area), [0, 12], 'lung never reaches 0.85');
  assert.equal(strict[1]!.topThreshold, 0.85);
  const perClass = new SegmentationProcessor({
    preprocessing: spec,
    activation: 'softmax',
    labels,
    background: 'background',
    postprocessing: { classes: { heart: { topThreshold: 0.95, minArea: 5 } } },
  });
  assert.deepEqual((await perClass.postprocess(logits(), undefined, { rows: 8, cols: 8 })).map((m) => m.area), [32, 0], 'only the heart has the gate');
});

test('manifest: softmax needs a background label; background is only for softmax', async () => {
  const json = JSON.parse(await readFile(new URL('../../models/synthetic-pneumothorax/1/model.json', import.meta.url), 'utf8'));
  const multi = { ...json, labels: labels, output: { ...json.output, activation: 'softmax', shape: [json.output.shape[0], 3, json.output.shape[2], json.output.shape[3]] } };
  assert.throws(() => parseManifest(multi), /background: softmax models name their background channel/);
  assert.equal(parseManifest({ ...multi, background: 'background' }).background, 'background');
  assert.throws(() => parseManifest({ ...multi, background: 'liver' }), /background/);
  assert.throws(() => parseManifest({ ...json, background: 'mask' }), /background is only for softmax models/);
  assert.throws(() => new SegmentationProcessor({ preprocessing: spec, activation: 'softmax', labels }), /background/);
});
