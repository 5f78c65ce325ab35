/**
 * Loaders on generated data: SIIM scan (mismatch counting, union of rows), pairs scan, the tensor
 * cache (decodes once, survives re-runs, invalidates on change, skips unreadable files) and the
 * streaming batch loader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, copyFile, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { generatePairsDataset, generateSiimDataset } from '../synth/index.ts';
import { decodeDicom } from '../core/dicom/decode.ts';
import { maskArea } from '../core/mask.ts';
import { maskToModel, toTensor } from '../core/preprocess/index.ts';
import { PreprocessSpecSchema } from '../core/preprocess/spec.ts';
import { TensorCache } from './data/cache.ts';
import { countingDecoder } from './data/decode.ts';
import { BatchLoader } from './data/loader.ts';
import { normalizeInPlace } from '../core/preprocess/tensor.ts';
import { quantisationBound } from './data/quantize.ts';
import { scanDataset } from './data/scan.ts';
import { DataError } from './data/types.ts';

const spec = PreprocessSpecSchema.parse({ size: { height: 32, width: 32 }, resize: 'bilinear', intensity: { kind: 'minmax' }, channels: 1 });

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'trainer-data-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

test('SIIM layout: labelled images found; images without rows and rows without images counted, not fatal', async (t) => {
  const root = await tempDir(t);
  const gen = await generateSiimDataset({ outDir: root, count: 10, size: 64, seed: 5, transferSyntaxUid: '1.2.840.10008.1.2.1' });
  const first = gen.images[0]!;
  await copyFile(join(root, first.file), join(dirname(join(root, first.file)), '9.9.9.unlabelled.dcm'));
  await appendFile(join(root, 'train-rle.csv'), '1.2.3.no-such-image, -1\n');
  const scan = await scanDataset('siim', root);
  assert.equal(scan.samples.length, 10);
  assert.equal(scan.counts.imagesWithoutLabel, 1);
  assert.equal(scan.counts.labelsWithoutImage, 1);
  const ids = new Set(scan.samples.map((s) => s.id));
  for (const r of gen.images) assert.ok(ids.has(r.imageId));
  // Several CSV rows for one image stay together (their union is the mask); -1 rows give no encodings.
  for (const r of gen.images) {
    const label = scan.samples.find((s) => s.id === r.imageId)!.label;
    assert.equal(label.kind, 'rle');
    if (label.kind === 'rle') assert.equal(label.encodings.length, r.components);
  }
});

test('SIIM layout errors are one-line DataErrors', async (t) => {
  const root = await tempDir(t);
  await assert.rejects(scanDataset('siim', join(root, 'missing')), (e: Error) => e instanceof DataError && /not found/.test(e.message));
  await assert.rejects(scanDataset('siim', root), (e: Error) => e instanceof DataError && /dicom-images-train/.test(e.message));
  await assert.rejects(scanDataset('pairs', root), (e: Error) => e instanceof DataError && /no labelled images/.test(e.message));
});

test('cache: first pass decodes every image once, later passes and epochs never decode', async (t) => {
  const root = await tempDir(t);
  const gen = await generateSiimDataset({ outDir: root, count: 8, size: 64, seed: 6, negativeFraction: 0.25, transferSyntaxUid: '1.2.840.10008.1.2.1' });
  const scan = await scanDataset('siim', root);
  const decode = countingDecoder();
  const cacheDir = join(root, 'cache');
  const cache = new TensorCache({ dir: cacheDir, spec, dtype: 'uint16', decode });
  const r1 = await cache.prepare(scan.samples);
  assert.equal(r1.misses, 8);
  assert.equal(r1.failed.length, 0);
  assert.equal(decode.calls, 8);

  // Records hold what the shared core produces, within the stated quantisation bound.
  for (const p of r1.prepared.slice(0, 3)) {
    const image = await decodeDicom(new Uint8Array(await readFile(p.imagePath)));
    const expected = await toTensor(image, spec);
    const { decodeSample } = await import('./data/decode.ts');
    const { mask } = await decodeSample(p);
    const rec = await cache.read(p, { originalMask: true });
    let err = 0;
    for (let i = 0; i < expected.length; i++) err = Math.max(err, Math.abs(expected[i]! - rec.image[i]!));
    assert.ok(err <= quantisationBound('uint16'), `max error ${err}`);
    assert.deepEqual(rec.mask, (await maskToModel(mask, spec)).data);
    assert.deepEqual(rec.originalMask!.data, mask.data);
    assert.equal(rec.meta.hasMask, maskArea(mask) > 0);
    const record = gen.images.find((g) => g.imageId === p.id)!;
    assert.equal(rec.meta.hasMask, record.components > 0);
  }

  const loader = new BatchLoader(cache, r1.prepared, { batchSize: 3, shuffle: true, seed: 1, prefetch: 2 });
  const seenPerEpoch: string[][] = [];
  for (const epoch of [0, 1]) {
    const ids: string[] = [];
    for await (const b of loader.epoch(epoch)) {
      assert.equal(b.images.length, b.n * 32 * 32);
      assert.equal(b.masks.length, b.n * 32 * 32);
      ids.push(...b.samples.map((s) => s.id));
    }
    assert.deepEqual(ids.slice().sort(), r1.prepared.map((p) => p.id).sort(), 'an epoch visits every sample once');
    seenPerEpoch.push(ids);
  }
  assert.notDeepEqual(seenPerEpoch[0], seenPerEpoch[1], 'order is reshuffled per epoch');
  assert.equal(decode.calls, 8, 'epochs read the cache, never the decoder');

  const again = new TensorCache({ dir: cacheDir, spec, dtype: 'uint16', decode });
  const r2 = await again.prepare(scan.samples);
  assert.equal(r2.hits, 8);
  assert.equal(decode.calls, 8, 'a second run reuses the records');

  // Touching one file (new mtime) invalidates exactly that record; another spec misses entirely.
  const touched = scan.samples[2]!;
  await utimes(touched.imagePath, new Date(), new Date(Date.now() + 5000));
  const r3 = await again.prepare(scan.samples);
  assert.equal(r3.misses, 1);
  assert.equal(decode.calls, 9);
  const other = new TensorCache({ dir: cacheDir, spec: { ...spec, size: { height: 16, width: 16 } }, dtype: 'uint16', decode });
  assert.equal((await other.prepare(scan.samples.slice(0, 2))).misses, 2);
});

test('cache: an unreadable file is reported and skipped, the rest prepared', async (t) => {
  const root = await tempDir(t);
  await generateSiimDataset({ outDir: root, count: 4, size: 64, seed: 7, transferSyntaxUid: '1.2.840.10008.1.2.1' });
  const scan = await scanDataset('siim', root);
  await writeFile(scan.samples[1]!.imagePath, 'this is not DICOM');
  const cache = new TensorCache({ dir: join(root, 'cache'), spec, dtype: 'float32', decode: countingDecoder() });
  const r = await cache.prepare(scan.samples);
  assert.equal(r.prepared.length, 3);
  assert.equal(r.failed.length, 1);
  assert.equal(r.failed[0]!.ref.id, scan.samples[1]!.id);
});

test('pairs layout: recursive image/_mask pairs, orphans counted, masks read through the shared reader', async (t) => {
  const root = await tempDir(t);
  const gen = await generatePairsDataset({ outDir: root, cases: 2, slicesPerCase: 4, size: 48, seed: 3 });
  const p0 = gen.pairs[0]!;
  await copyFile(join(root, p0.image), join(root, 'orphan_image.png'));
  await copyFile(join(root, p0.mask), join(root, p0.caseId, 'lonely_mask.png'));
  const scan = await scanDataset('pairs', root);
  assert.equal(scan.samples.length, gen.pairs.length);
  assert.equal(scan.counts.imagesWithoutLabel, 1);
  assert.equal(scan.counts.labelsWithoutImage, 1);
  const cache = new TensorCache({ dir: join(root, '.cache'), spec, dtype: 'float32', decode: countingDecoder() });
  const r = await cache.prepare(scan.samples);
  assert.equal(r.failed.length, 0);
  for (const pair of gen.pairs) {
    const p = r.prepared.find((s) => s.id === pair.image.replace(/\.png$/, ''))!;
    assert.ok(p, `pair ${pair.image} prepared`);
    assert.equal(p.meta.area, pair.tumourPixels);
    assert.equal(p.meta.origRows, 48);
  }
});

test('loader normalisation is bit-identical to toTensor with the same normalize spec', async (t) => {
  const root = await tempDir(t);
  await generateSiimDataset({ outDir: root, count: 2, size: 64, seed: 8, transferSyntaxUid: '1.2.840.10008.1.2.1' });
  const scan = await scanDataset('siim', root);
  const cache = new TensorCache({ dir: join(root, 'cache'), spec, dtype: 'float32', decode: countingDecoder() });
  const { prepared } = await cache.prepare(scan.samples);
  const norm = { mean: [0.41], std: [0.23] };
  const rec = await cache.read(prepared[0]!);
  const mine = rec.image.slice();
  normalizeInPlace(mine, 1, norm);
  const image = await decodeDicom(new Uint8Array(await readFile(prepared[0]!.imagePath)));
  const theirs = await toTensor(image, { ...spec, normalize: norm });
  assert.deepEqual(mine, theirs);
});

test('pairs layout: each sample carries its patient (folder) as its fold group; one flat folder has none', async (t) => {
  const root = await tempDir(t);
  const gen = await generatePairsDataset({ outDir: join(root, 'kaggle_3m'), cases: 3, slicesPerCase: 2, size: 32, seed: 4 });
  const scan = await scanDataset('pairs', root);
  assert.equal(scan.samples.length, 6);
  for (const s of scan.samples) {
    const pair = gen.pairs.find((p) => s.id === `kaggle_3m/${p.image.replace(/\.png$/, '')}`)!;
    assert.equal(s.group, `kaggle_3m/${pair.caseId}`);
  }
  // Everything in one folder: no patient structure to keep together.
  const flat = await scanDataset('pairs', join(root, 'kaggle_3m', gen.pairs[0]!.caseId));
  assert.ok(flat.samples.length === 2 && flat.samples.every((s) => s.group === undefined));
});

test('an intensity window that clamps every pixel is refused with the data range in one line (issue 15, defect 14)', async (t) => {
  const root = await tempDir(t);
  await generatePairsDataset({ outDir: root, cases: 2, slicesPerCase: 3, size: 32, seed: 6 });
  const scan = await scanDataset('pairs', root);
  for (const dtype of ['float32', 'uint8'] as const) {
    const above = PreprocessSpecSchema.parse({ ...spec, intensity: { kind: 'window', center: 2500, width: 1000 } });
    const cache = new TensorCache({ dir: join(root, `.cache-${dtype}`), spec: above, dtype, decode: countingDecoder() });
    await assert.rejects(cache.prepare(scan.samples), (e: Error) => {
      assert.ok(e instanceof DataError, String(e));
      assert.match(e.message, /window:2500:1000 \(values 2000\.\.3000\) turns every pixel of all 6 image\(s\) into the constant 0: nothing to train on; the images' values span 0\.\.\d+/);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
    // Cached records (a second run) are refused the same way.
    await assert.rejects(cache.prepare(scan.samples), DataError);
  }
  // A window that overlaps the 8-bit data is fine.
  const overlapping = PreprocessSpecSchema.parse({ ...spec, intensity: { kind: 'window', center: 100, width: 200 } });
  const ok = await new TensorCache({ dir: join(root, '.cache-ok'), spec: overlapping, dtype: 'float32', decode: countingDecoder() }).prepare(scan.samples);
  assert.equal(ok.prepared.length, 6);
});
