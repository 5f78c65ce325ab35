/**
 * Multi-class layouts on generated data: the label-map layout and the Kaggle multi-class CSV layout
 * (synth/multiclass.ts) scan, decode and cache to the generator's own label maps, including the CSV
 * quirks (a class's mask is the union of its rows; an absent class is no row, an empty
 * EncodedPixels or -1); the loader one-hot encodes the class maps, and augmentation moves them with
 * nearest sampling exactly as it moves a binary mask.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateMulticlassDataset, multiclassImage } from '../synth/multiclass.ts';
import { PreprocessSpecSchema } from '../core/preprocess/spec.ts';
import { applyAugment, sampleAugmentParams, DEFAULT_AUGMENT } from './augment.ts';
import { resizeLabels, TensorCache } from './data/cache.ts';
import { countingDecoder, decodeSample } from './data/decode.ts';
import { BatchLoader } from './data/loader.ts';
import { parseMulticlassCsv, scanDataset } from './data/scan.ts';
import { DataError } from './data/types.ts';
import { Rng } from '../core/rng.ts';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const spec = PreprocessSpecSchema.parse({ size: { height: 32, width: 32 }, resize: 'bilinear', intensity: { kind: 'minmax' }, channels: 1 });

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'trainer-mc-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

test('labelmap and kaggle-multiclass layouts decode to the generator label maps (CSV quirks included)', async (t) => {
  const root = await tempDir(t);
  const seed = 4;
  const size = 64;
  const count = 12;
  const lm = await generateMulticlassDataset({ outDir: join(root, 'lm'), layout: 'labelmap', count, size, seed, negativeFraction: 0.7, transferSyntaxUid: EXPLICIT_LE });
  const csv = await generateMulticlassDataset({ outDir: join(root, 'csv'), layout: 'csv', count, size, seed, negativeFraction: 0.7, transferSyntaxUid: EXPLICIT_LE });

  // The quirks the CSV must exercise are really in the file.
  const csvText = await readFile(csv.csvPath!, 'utf8');
  const info = JSON.parse(await readFile(join(root, 'csv', 'synth-info.json'), 'utf8'));
  assert.ok(info.missingClassRows['no-row'] > 0 && info.missingClassRows.empty > 0 && info.missingClassRows['-1'] > 0, JSON.stringify(info.missingClassRows));
  assert.match(csvText, /,-1\n/);
  assert.match(csvText, /,\d,\n/);
  const lungRows = csv.images[0]!.csvRows!.filter((r) => r.split(',')[1] === '1');
  assert.ok(lungRows.length >= 2, 'lung is written as several rows (one per component): its mask is their union');

  const a = await scanDataset('labelmap', join(root, 'lm'));
  const b = await scanDataset('kaggle-multiclass', join(root, 'csv'));
  assert.deepEqual(a.classes, ['background', 'lung', 'heart', 'pneumothorax']);
  assert.deepEqual(b.classes, a.classes);
  assert.equal(a.samples.length, count);
  assert.equal(b.samples.length, count);
  for (let i = 0; i < count; i++) {
    const want = multiclassImage(seed, i, size, { negativeFraction: 0.7 }).labels;
    const fromMap = await decodeSample(a.samples.find((s) => s.id === lm.images[i]!.imageId)!);
    const fromCsv = await decodeSample(b.samples.find((s) => s.id === csv.images[i]!.imageId)!);
    assert.deepEqual(fromMap.labels!.data, want, `labelmap image ${i}`);
    assert.deepEqual(fromCsv.labels!.data, want, `csv image ${i}`);
    assert.deepEqual(fromCsv.mask.data, Uint8Array.from(want, (v) => (v ? 1 : 0)), 'the foreground mask is every non-background class');
  }

  // Cache: class-index maps at model resolution (nearest, values kept) and at original resolution.
  const decode = countingDecoder();
  const cache = new TensorCache({ dir: join(root, 'cache'), spec, dtype: 'uint16', decode, classes: 4 });
  const prep = await cache.prepare(b.samples);
  assert.equal(prep.failed.length, 0);
  for (const p of prep.prepared.slice(0, 3)) {
    const rec = await cache.read(p, { originalMask: true });
    const want = multiclassImage(seed, csv.images.findIndex((r) => r.imageId === p.id), size, { negativeFraction: 0.7 }).labels;
    assert.equal(rec.meta.target, 'labels');
    assert.equal(rec.mask.length, 32 * 32, 'one class-index plane, not 4 one-hot planes');
    assert.deepEqual(rec.mask, resizeLabels({ rows: size, cols: size, data: want }, 32, 32).data);
    assert.deepEqual(rec.originalLabels!.data, want);
    assert.deepEqual(rec.meta.classAreas, [0, 1, 2, 3].map((c) => want.filter((v) => v === c).length));
  }
  assert.equal((await cache.prepare(b.samples)).hits, count, 'records are reused');
  assert.equal(decode.calls, count);

  // A class count the labels do not fit is a per-image failure naming the value.
  const small = new TensorCache({ dir: join(root, 'cache'), spec, dtype: 'uint16', decode, classes: 3 });
  const bad = await small.prepare(b.samples.slice(0, 4));
  assert.ok(bad.failed.some((f) => /label value 3 is not a class index/.test(f.message)), JSON.stringify(bad.failed.map((f) => f.message)));

  // Loader: one-hot planes that agree with the label maps, with and without augmentation.
  for (const augment of [undefined, { ...DEFAULT_AUGMENT, rotate: 20, hflip: 1 }]) {
    const loader = new BatchLoader(cache, prep.prepared, { batchSize: 4, shuffle: true, seed: 2, augment });
    for await (const batch of loader.epoch(0)) {
      assert.equal(batch.masks.length, batch.n * 4 * 32 * 32);
      assert.equal(batch.labels!.length, batch.n * 32 * 32);
      for (let k = 0; k < batch.n; k++) {
        for (let i = 0; i < 32 * 32; i++) {
          const lab = batch.labels![k * 1024 + i]!;
          assert.ok(lab < 4);
          for (let c = 0; c < 4; c++) assert.equal(batch.masks[k * 4096 + c * 1024 + i], c === lab ? 1 : 0);
        }
      }
    }
  }
});

test('augmentation moves a class-index map with nearest sampling exactly like a binary mask', () => {
  const h = 24;
  const w = 20;
  const labels = new Uint8Array(h * w);
  for (let i = 0; i < labels.length; i++) labels[i] = (i * 7) % 5;
  const image = new Float32Array(h * w).fill(0.5);
  const p = sampleAugmentParams({ ...DEFAULT_AUGMENT, rotate: 25, hflip: 1 }, new Rng(9), h, w);
  const moved = applyAugment({ image, mask: labels, channels: 1, classes: 1, height: h, width: w }, p).mask;
  for (let c = 0; c < 5; c++) {
    const bin = Uint8Array.from(labels, (v) => (v === c ? 1 : 0));
    const movedBin = applyAugment({ image, mask: bin, channels: 1, classes: 1, height: h, width: w }, p).mask;
    assert.deepEqual(Uint8Array.from(moved, (v) => (v === c ? 1 : 0)), movedBin, `class ${c}`);
  }
});

test('kaggle-multiclass CSV: union of rows, -1 / empty / missing rows, unlabelled images and bad class ids', async (t) => {
  const root = await tempDir(t);
  const gen = await generateMulticlassDataset({ outDir: root, layout: 'csv', count: 3, size: 48, seed: 8, transferSyntaxUid: EXPLICIT_LE });
  const [i0, i1, i2] = gen.images.map((r) => r.imageId) as [string, string, string];
  // Image 0: lung split into two rows whose union is the square; heart -1; pneumothorax empty.
  // Image 1: heart only (no rows for the rest), with its id written as a file name.
  // Image 2: no row at all (unlabelled: skipped). Plus a row for an image that does not exist.
  const csvText = [
    'ImageId,ClassId,EncodedPixels',
    `${i0},1,1 5`, // column 0, rows 0..4 (Kaggle RLE is column-major, 1-based)
    `${i0},1,49 5`, // column 1, rows 0..4
    `${i0},2,-1`,
    `${i0},3,`,
    `${i1}.dcm,2,100 3`,
    `1.2.3.4.no-image,1,1 1`,
  ].join('\n');
  await writeFile(join(root, 'train.csv'), csvText + '\n');
  const scan = await scanDataset('kaggle-multiclass', root);
  assert.deepEqual(scan.samples.map((s) => s.id).sort(), [i0, i1].sort());
  assert.equal(scan.counts.imagesWithoutLabel, 1, `${i2} has no row`);
  assert.equal(scan.counts.labelsWithoutImage, 1);
  const d0 = await decodeSample(scan.samples.find((s) => s.id === i0)!);
  const lung = [...d0.labels!.data.entries()].filter(([, v]) => v === 1).map(([i]) => i);
  assert.deepEqual(lung, [0, 1, 48, 49, 96, 97, 144, 145, 192, 193], 'union of the two rows');
  assert.equal(d0.labels!.data.filter((v) => v > 1).length, 0, '-1 and empty rows add nothing');
  const d1 = await decodeSample(scan.samples.find((s) => s.id === i1)!);
  assert.equal(d1.labels!.data.filter((v) => v === 2).length, 3);
  assert.equal(d1.labels!.data.filter((v) => v !== 0 && v !== 2).length, 0);

  assert.throws(() => parseMulticlassCsv('ImageId,ClassId,EncodedPixels\nx,4,1 2\n', 4), (e: Error) => e instanceof DataError && /ClassId "4" is not a class index in 1\.\.3/.test(e.message));
  assert.throws(() => parseMulticlassCsv('ImageId,ClassId,EncodedPixels\nx,0,1 2\n', 4), /not a class index/);
  assert.throws(() => parseMulticlassCsv('ImageId,EncodedPixels\n', 4), /expected header/);
  await writeFile(join(root, 'classes.json'), '["background"]');
  await assert.rejects(scanDataset('kaggle-multiclass', root), /2\.\.255 non-empty class names/);
});
