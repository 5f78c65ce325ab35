import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import dicomParser from 'dicom-parser';
import sharp from 'sharp';
import { decodeDicom } from '../core/dicom/decode.ts';
import { TS } from '../core/dicom/transfer-syntax.ts';
import { masksEqual } from '../core/mask.ts';
import { decodeSiimEntry, parseSiimRleCsv } from '../core/rle/siim-csv.ts';
import { SYNTHETIC_PATIENT_ID_PATTERN, SYNTHETIC_PATIENT_NAME } from './identity.ts';
import { chestDicom, generateSiimDataset, SIIM_CSV_HEADER, siimImage, type SiimDatasetOptions } from './siim.ts';

const SIZE = 96;
const OPTS = { count: 10, testCount: 2, size: SIZE, seed: 3, negativeFraction: 0.3, secondLesionProbability: 1 } satisfies Omit<SiimDatasetOptions, 'outDir'>;

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

interface Frame {
  rows: number;
  columns: number;
  ts: string;
  pixels: Uint8Array;
  patientName?: string;
  patientId?: string;
  sopInstanceUid?: string;
}

/** The first start-of-frame marker of a JPEG stream and its component count. */
function sof(jpeg: Uint8Array): { marker: number; components: number } | undefined {
  let i = 2;
  while (i + 9 < jpeg.length) {
    if (jpeg[i] !== 0xff) return undefined;
    const m = jpeg[i + 1];
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return { marker: m, components: jpeg[i + 9] };
    i += 2 + ((jpeg[i + 2] << 8) | jpeg[i + 3]);
  }
  return undefined;
}

/** Independent reader (dicom-parser + sharp for JPEG) so the test does not trust our writer. */
async function readFrame(bytes: Uint8Array): Promise<Frame> {
  const ds = dicomParser.parseDicom(bytes);
  const ts = ds.string('x00020010') ?? '';
  const rows = ds.uint16('x00280010') ?? 0;
  const columns = ds.uint16('x00280011') ?? 0;
  const el = ds.elements.x7fe00010;
  let pixels: Uint8Array;
  if (el.encapsulatedPixelData) {
    const frame = dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0);
    assert.deepEqual(sof(frame), { marker: 0xc0, components: 1 }, 'JPEG Baseline (SOF0), one component');
    const { data, info } = await sharp(frame).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.channels, 1);
    pixels = new Uint8Array(data);
  } else {
    pixels = new Uint8Array(bytes.buffer, bytes.byteOffset + el.dataOffset, rows * columns).slice();
  }
  return { rows, columns, ts, pixels, patientName: ds.string('x00100010'), patientId: ds.string('x00100020'), sopInstanceUid: ds.string('x00080018') };
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

test('SIIM layout: same seed gives the same files and bytes', async (t) => {
  const a = await mkdtemp(path.join(tmpdir(), 'synth-a-'));
  const b = await mkdtemp(path.join(tmpdir(), 'synth-b-'));
  t.after(() => Promise.all([rm(a, { recursive: true, force: true }), rm(b, { recursive: true, force: true })]));
  await generateSiimDataset({ ...OPTS, outDir: a });
  await generateSiimDataset({ ...OPTS, outDir: b });
  const fa = await listFiles(a);
  assert.deepEqual(fa, await listFiles(b));
  assert.equal(fa.filter((f) => f.endsWith('.dcm')).length, OPTS.count + OPTS.testCount);
  for (const f of fa) assert.deepEqual(await readFile(path.join(a, f)), await readFile(path.join(b, f)), f);
});

test('SIIM layout: directory structure, CSV quirks, masks and decodable DICOMs', async (t) => {
  const out = await mkdtemp(path.join(tmpdir(), 'synth-siim-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  const res = await generateSiimDataset({ ...OPTS, outDir: out });
  const text = await readFile(res.csvPath, 'utf8');
  const lines = text.trimEnd().split('\n');
  assert.equal(lines[0], 'ImageId, EncodedPixels');
  assert.equal(SIIM_CSV_HEADER, lines[0]);

  const train = res.images.filter((r) => r.split === 'train');
  const test = res.images.filter((r) => r.split === 'test');
  assert.equal(train.length, OPTS.count);
  assert.equal(test.length, OPTS.testCount);
  // Every training image has its rows together, in order; test images have none.
  const idsInCsv = lines.slice(1).map((l) => l.slice(0, l.indexOf(',')));
  const runs = idsInCsv.filter((id, i) => i === 0 || idsInCsv[i - 1] !== id);
  assert.deepEqual(runs, train.map((r) => r.imageId));
  for (const r of test) assert.ok(!idsInCsv.includes(r.imageId));

  const table = parseSiimRleCsv(text);
  let negatives = 0;
  let multi = 0;
  for (const [index, rec] of train.entries()) {
    // Path: dicom-images-train/<Study>/<Series>/<SOP>.dcm, ImageId = SOP UID = file stem.
    assert.deepEqual(rec.file.split(path.sep), ['dicom-images-train', rec.studyInstanceUid, rec.seriesInstanceUid, `${rec.imageId}.dcm`]);
    const truth = siimImage(OPTS.seed, 'train', index, SIZE, OPTS).phantom;
    const rows = lines.filter((l) => l.startsWith(`${rec.imageId},`));
    if (truth.components.length === 0) {
      negatives++;
      assert.deepEqual(rows, [`${rec.imageId}, -1`]);
    } else {
      assert.equal(rows.length, truth.components.length);
      for (const row of rows) assert.match(row, /^[\d.]+, \d+( \d+)*$/);
      if (rows.length > 1) multi++;
    }
    // The union of the image's rows is exactly the truth mask.
    const decoded = decodeSiimEntry(table.get(rec.imageId)!, SIZE, SIZE);
    assert.ok(masksEqual(decoded, truth.mask), `mask of image ${index}`);

    const frame = await readFrame(await readFile(path.join(out, rec.file)));
    assert.equal(frame.ts, TS.JPEGBaseline);
    assert.equal(frame.rows, SIZE);
    assert.equal(frame.columns, SIZE);
    assert.equal(frame.sopInstanceUid, rec.imageId);
    assert.equal(frame.patientName, SYNTHETIC_PATIENT_NAME);
    assert.match(frame.patientId ?? '', SYNTHETIC_PATIENT_ID_PATTERN);
    // Lossy, but it is this phantom.
    assert.ok(meanAbsDiff(frame.pixels, truth.pixels) < 3, `image ${index} decodes far from its phantom`);
    // And the project's own decoder reads it at the intended size, with the same pixels.
    const decoded2 = await decodeDicom(await readFile(path.join(out, rec.file)));
    assert.equal(decoded2.rows, SIZE);
    assert.equal(decoded2.columns, SIZE);
    assert.equal(decoded2.photometricInterpretation, 'MONOCHROME2');
    assert.ok(meanAbsDiff(Uint8Array.from(decoded2.pixels), frame.pixels) < 1, `image ${index}: project decoder differs from libjpeg`);
  }
  for (const rec of test) {
    const d = await decodeDicom(await readFile(path.join(out, rec.file)));
    assert.equal(d.rows, SIZE);
    assert.equal(d.sopInstanceUid, rec.imageId);
  }
  assert.ok(negatives > 0, 'no negative image in the sample');
  assert.ok(multi > 0, 'no image with several lesion rows in the sample');
});

test('SIIM variants: native syntaxes carry the exact phantom pixels', async (t) => {
  const out = await mkdtemp(path.join(tmpdir(), 'synth-var-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  const syntaxes = [TS.ExplicitVRLittleEndian, TS.ImplicitVRLittleEndian];
  const res = await generateSiimDataset({ outDir: out, count: 2, size: 64, seed: 4, syntaxes, transferSyntaxUid: TS.ExplicitVRLittleEndian });
  for (const [index, rec] of res.images.entries()) {
    const truth = siimImage(4, 'train', index, 64).phantom;
    const main = await readFrame(await readFile(path.join(out, rec.file)));
    assert.deepEqual(main.pixels, truth.pixels);
    for (const ts of syntaxes) {
      const rel = rec.variants[ts];
      assert.ok(rel?.startsWith(path.join('syntaxes', ts)), `variant path ${rel}`);
      const bytes = await readFile(path.join(out, rel));
      const ds = dicomParser.parseDicom(bytes);
      assert.equal(ds.string('x00020010'), ts);
      assert.equal(ds.string('x00080018'), rec.imageId);
      const el = ds.elements.x7fe00010;
      assert.deepEqual(new Uint8Array(bytes.buffer, bytes.byteOffset + el.dataOffset, 64 * 64), truth.pixels);
    }
  }
});

test('SIIM variants: dcmtk/OpenJPEG-made lossless syntaxes decode to the exact phantom pixels', async (t) => {
  const out = await mkdtemp(path.join(tmpdir(), 'synth-var2-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  const syntaxes = [TS.RLELossless, TS.JPEGLosslessSV1, TS.JPEGLSLossless, TS.JPEG2000Lossless, TS.ExplicitVRBigEndian, TS.DeflatedExplicitVRLittleEndian];
  const res = await generateSiimDataset({ outDir: out, count: 1, size: 64, seed: 5, syntaxes });
  const rec = res.images[0];
  const truth = siimImage(5, 'train', 0, 64).phantom;
  for (const ts of syntaxes) {
    const d = await decodeDicom(await readFile(path.join(out, rec.variants[ts]!)));
    assert.equal(d.transferSyntaxUid, ts);
    assert.equal(d.sopInstanceUid, rec.imageId);
    assert.deepEqual(Uint8Array.from(d.pixels), truth.pixels, `pixels of ${ts}`);
  }
});

test('chestDicom gives one DICOM and its truth mask in memory', async () => {
  const d = await chestDicom(11, { size: 64, lesions: 2, transferSyntaxUid: TS.ExplicitVRLittleEndian });
  const frame = await readFrame(d.bytes);
  assert.deepEqual(frame.pixels, d.pixels);
  assert.equal(frame.sopInstanceUid, d.sopInstanceUid);
  assert.ok(d.components.length >= 1);
  const neg = await chestDicom(11, { size: 64, lesions: 0 });
  assert.equal(neg.components.length, 0);
  assert.equal((await readFrame(neg.bytes)).ts, TS.JPEGBaseline);
});

test('SIIM generator rejects bad options with clear errors', async () => {
  await assert.rejects(generateSiimDataset({ outDir: '/nonexistent-unused', count: -1 }), /count must be an integer/);
  await assert.rejects(generateSiimDataset({ outDir: '/nonexistent-unused', count: 1, size: 8 }), /size must be an integer/);
});
