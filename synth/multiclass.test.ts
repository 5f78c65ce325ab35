import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { decodeDicom } from '../core/dicom/decode.ts';
import { TS } from '../core/dicom/transfer-syntax.ts';
import { decodeMask, unionMasks } from '../core/rle/index.ts';
import { SYNTHETIC_PATIENT_NAME } from './identity.ts';
import { generateMulticlassDataset, MULTICLASS_CLASSES, MULTICLASS_CSV_HEADER, multiclassImage, type MulticlassDatasetOptions } from './multiclass.ts';

const SIZE = 64;
const BASE = { count: 9, size: SIZE, seed: 3, negativeFraction: 0.5 } satisfies Omit<MulticlassDatasetOptions, 'outDir' | 'layout'>;

async function tempDir(t: { after(f: () => Promise<void>): void }, prefix: string): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), prefix));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

async function readGreyPng(file: string): Promise<{ data: Uint8Array; width: number; height: number; channels: number }> {
  // The file itself must be one 8-bit grey channel; sharp would otherwise hand back sRGB.
  const meta = await sharp(file).metadata();
  const { data, info } = await sharp(file).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  assert.equal(meta.depth, 'uchar');
  return { data: new Uint8Array(data), width: info.width, height: info.height, channels: meta.channels ?? 0 };
}

/** Parses train.csv strictly: header, then ImageId,ClassId,EncodedPixels rows (EncodedPixels may be empty). */
function parseCsv(text: string): { header: string; rows: { imageId: string; classId: number; rle: string }[] } {
  assert.ok(text.endsWith('\n'));
  const lines = text.slice(0, -1).split('\n');
  const rows = lines.slice(1).map((line) => {
    const parts = line.split(',');
    assert.equal(parts.length, 3, `row "${line}"`);
    assert.match(parts[1]!, /^\d+$/);
    return { imageId: parts[0]!, classId: Number(parts[1]), rle: parts[2]! };
  });
  return { header: lines[0]!, rows };
}

test('labelmap layout: DICOM images, class-index PNG masks within the class list, classes.json', async (t) => {
  const out = await tempDir(t, 'mc-lm-');
  const res = await generateMulticlassDataset({ ...BASE, outDir: out, layout: 'labelmap' });
  const stems = Array.from({ length: BASE.count }, (_, i) => `SYN_CXR_${String(i + 1).padStart(5, '0')}`);
  assert.deepEqual(await listFiles(out), ['classes.json', ...stems.map((s) => `images/${s}.dcm`), ...stems.map((s) => `masks/${s}_mask.png`), 'synth-info.json'].sort());
  assert.deepEqual(JSON.parse(await readFile(path.join(out, 'classes.json'), 'utf8')), [...MULTICLASS_CLASSES]);
  const seen = new Set<number>();
  for (const [i, stem] of stems.entries()) {
    const img = await decodeDicom(new Uint8Array(await readFile(path.join(out, 'images', `${stem}.dcm`))));
    assert.equal(img.rows, SIZE);
    assert.equal(img.columns, SIZE);
    assert.equal(img.photometricInterpretation, 'MONOCHROME2');
    assert.equal(img.transferSyntaxUid, TS.JPEGBaseline);
    const mask = await readGreyPng(path.join(out, 'masks', `${stem}_mask.png`));
    assert.deepEqual([mask.width, mask.height, mask.channels], [SIZE, SIZE, 1]);
    for (const v of mask.data) {
      assert.ok(v < MULTICLASS_CLASSES.length, `class index ${v} outside the class list`);
      seen.add(v);
    }
    // The mask is the generator's label map, and lung/heart are present in every image.
    const truth = multiclassImage(BASE.seed, i, SIZE, BASE);
    assert.deepEqual(mask.data, truth.labels);
    assert.ok(res.images[i]!.classPixels[1]! > 0 && res.images[i]!.classPixels[2]! > 0);
    assert.equal(res.images[i]!.classPixels.reduce((a, b) => a + b, 0), SIZE * SIZE);
  }
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);

  const png = await tempDir(t, 'mc-lm-png-');
  await generateMulticlassDataset({ ...BASE, count: 1, outDir: png, layout: 'labelmap', imageFormat: 'png' });
  const image = await readGreyPng(path.join(png, 'images', 'SYN_CXR_00001.png'));
  assert.deepEqual(image.data, multiclassImage(BASE.seed, 0, SIZE, BASE).phantom.pixels);
});

test('csv layout: DICOM tree + train.csv decodes (core/rle kaggle, union of rows) back to the same label maps; quirk rows present', async (t) => {
  const out = await tempDir(t, 'mc-csv-');
  const lm = await tempDir(t, 'mc-csv-lm-');
  const res = await generateMulticlassDataset({ ...BASE, outDir: out, layout: 'csv', transferSyntaxUid: TS.ExplicitVRLittleEndian });
  await generateMulticlassDataset({ ...BASE, outDir: lm, layout: 'labelmap' });
  const files = await listFiles(out);
  assert.deepEqual(files.filter((f) => !f.startsWith('train_images/')), ['classes.json', 'synth-info.json', 'train.csv']);
  assert.equal(files.length, 3 + BASE.count);

  const { header, rows } = parseCsv(await readFile(path.join(out, 'train.csv'), 'utf8'));
  assert.equal(header, MULTICLASS_CSV_HEADER);
  const byImage = new Map<string, typeof rows>();
  for (const r of rows) {
    assert.ok(r.classId >= 1 && r.classId < MULTICLASS_CLASSES.length, `ClassId ${r.classId}`);
    byImage.set(r.imageId, [...(byImage.get(r.imageId) ?? []), r]);
  }
  // Rows of an image are adjacent.
  const order = rows.map((r) => r.imageId).filter((id, k, a) => k === 0 || a[k - 1] !== id);
  assert.equal(new Set(order).size, order.length);

  let multiRow = 0;
  const missing = { 'no-row': 0, empty: 0, '-1': 0 };
  for (const [i, rec] of res.images.entries()) {
    // Real DICOM in a Study/Series/SOP tree named by the ImageId.
    const parts = rec.image.split(path.sep);
    assert.equal(parts[0], 'train_images');
    assert.equal(parts[3], `${rec.imageId}.dcm`);
    const dcm = await decodeDicom(new Uint8Array(await readFile(path.join(out, rec.image))));
    assert.equal(dcm.sopInstanceUid, rec.imageId);
    assert.equal(dcm.transferSyntaxUid, TS.ExplicitVRLittleEndian);
    const truth = multiclassImage(BASE.seed, i, SIZE, BASE);
    assert.deepEqual(Array.from(dcm.pixels), Array.from(truth.phantom.pixels));

    // Decode the rows back into a label map.
    const mine = byImage.get(rec.imageId) ?? [];
    const labels = new Uint8Array(SIZE * SIZE);
    for (let c = 1; c < MULTICLASS_CLASSES.length; c++) {
      const classRows = mine.filter((r) => r.classId === c);
      if (classRows.length > 1) multiRow++;
      if (classRows.length === 0) missing['no-row']++;
      else if (classRows.length === 1 && classRows[0]!.rle === '') missing.empty++;
      else if (classRows.length === 1 && classRows[0]!.rle === '-1') missing['-1']++;
      const mask = unionMasks(SIZE, SIZE, classRows.map((r) => decodeMask(r.rle, 'kaggle', SIZE, SIZE)));
      for (let p = 0; p < labels.length; p++) {
        if (!mask.data[p]) continue;
        assert.equal(labels[p], 0, `image ${i}: pixel ${p} claimed by two classes`);
        labels[p] = c;
      }
    }
    assert.deepEqual(labels, truth.labels, `image ${i}: CSV label map differs from the generator's`);
    const png = await readGreyPng(path.join(lm, 'masks', `SYN_CXR_${String(i + 1).padStart(5, '0')}_mask.png`));
    assert.deepEqual(labels, png.data, `image ${i}: CSV and label-map layouts disagree`);
  }
  assert.ok(multiRow >= BASE.count, `several rows for one class (union): ${multiRow}`);
  assert.ok(missing['no-row'] >= 1 && missing.empty >= 1 && missing['-1'] >= 1, `missing-class quirks: ${JSON.stringify(missing)}`);
  const info = JSON.parse(await readFile(path.join(out, 'synth-info.json'), 'utf8'));
  assert.deepEqual(info.missingClassRows, missing);
  // Patient identity is the synthetic one.
  const first = await readFile(path.join(out, res.images[0]!.image));
  assert.ok(first.includes(Buffer.from(SYNTHETIC_PATIENT_NAME)));
});

test('multiclass layouts: same seed gives the same files and bytes, another seed does not', async (t) => {
  for (const layout of ['labelmap', 'csv'] as const) {
    const [a, b, c] = await Promise.all([tempDir(t, 'mc-a-'), tempDir(t, 'mc-b-'), tempDir(t, 'mc-c-')]);
    const opts = { ...BASE, count: 4, layout };
    await generateMulticlassDataset({ ...opts, outDir: a });
    await generateMulticlassDataset({ ...opts, outDir: b });
    await generateMulticlassDataset({ ...opts, seed: 4, outDir: c });
    const fa = await listFiles(a);
    assert.deepEqual(await listFiles(b), fa);
    for (const f of fa) assert.ok((await readFile(path.join(a, f))).equals(await readFile(path.join(b, f))), `${layout}: ${f} differs`);
    const mainFile = layout === 'csv' ? 'train.csv' : path.join('masks', 'SYN_CXR_00001_mask.png');
    assert.ok(!(await readFile(path.join(a, mainFile))).equals(await readFile(path.join(c, mainFile))), `${layout}: seed 4 gave the same ${mainFile}`);
  }
});

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cli.ts');
async function synth(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, ['--import', 'tsx', CLI, ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

test('synth multiclass CLI writes both layouts and rejects bad arguments', async (t) => {
  const out = await tempDir(t, 'mc-cli-');
  const csv = await synth(['multiclass', '--layout', 'csv', '--out', path.join(out, 'csv'), '--count', '2', '--size', '48', '--seed', '5']);
  assert.equal(csv.code, 0, csv.stderr);
  assert.match(csv.stdout, /wrote 2 csv images of 48x48/);
  assert.ok((await readFile(path.join(out, 'csv', 'train.csv'), 'utf8')).startsWith('ImageId,ClassId,EncodedPixels\n'));
  const lm = await synth(['multiclass', '--layout', 'labelmap', '--out', path.join(out, 'lm'), '--count', '1', '--size', '48', '--image-format', 'png']);
  assert.equal(lm.code, 0, lm.stderr);
  assert.deepEqual(await listFiles(path.join(out, 'lm')), ['classes.json', 'images/SYN_CXR_00001.png', 'masks/SYN_CXR_00001_mask.png', 'synth-info.json']);
  const badLayout = await synth(['multiclass', '--layout', 'nope', '--out', path.join(out, 'x')]);
  assert.notEqual(badLayout.code, 0);
  assert.match(badLayout.stderr, /--layout.*labelmap, csv/);
  const pngCsv = await synth(['multiclass', '--layout', 'csv', '--image-format', 'png', '--out', path.join(out, 'y')]);
  assert.notEqual(pngCsv.code, 0);
  assert.match(pngCsv.stderr, /--image-format png is for --layout labelmap/);
});
