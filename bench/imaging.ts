/**
 * Imaging-core timings on this machine (not a test): median (and min) over timed runs after warm-up.
 *
 *   node --import tsx bench/imaging.ts [--runs 40] [--warmup 8]
 *
 * - decode + preprocess of a 1024x1024 JPEG Baseline chest DICOM and a 512x512 16-bit CT-like
 *   DICOM (explicit VR LE, rescale, window) to 256x256 and 512x512 tensors;
 * - RLE encode/decode of a 1024x1024 mask holding a synthetic pneumothorax, every format;
 * - the 1024² JPEG codestream decoded alone, at full size and at 1/8 scale (libjpeg's DCT scaling:
 *   what is left is entropy decoding, the floor of any JPEG decode of that file);
 * - preprocessing alone, 'bilinear' (antialiased, 2 x factor taps per axis) against 'area' (factor taps);
 * - the resize alone: the preprocessing's JS resampler vs sharp (libvips) on 16-bit raw input.
 * Targets: decode+preprocess of the 1024 JPEG under 20 ms; RLE under 5 ms.
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { decodeDicom } from '../core/dicom/decode.ts';
import { TS } from '../core/dicom/transfer-syntax.ts';
import { writeDicom } from '../core/dicom/write.ts';
import { maskArea, masksEqual } from '../core/mask.ts';
import { parsePreprocessSpec, resampleFloat32, toTensor, type PreprocessSpec } from '../core/preprocess/index.ts';
import { decodeMask, encodeMask, RLE_FORMATS } from '../core/rle/index.ts';
import { chestPhantom } from '../synth/chest.ts';
import { mulberry32 } from '../synth/rng.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '40' }, warmup: { type: 'string', default: '8' } } });
const RUNS = Number(values.runs);
const WARMUP = Number(values.warmup);

interface Row {
  what: string;
  median: number;
  min: number;
  target?: number;
}
const rows: Row[] = [];

async function measure(what: string, fn: () => unknown, target?: number): Promise<void> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const t: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  const row: Row = { what, median: t[Math.floor(t.length / 2)]!, min: t[0]! };
  if (target !== undefined) row.target = target;
  rows.push(row);
}

function spec(size: number, intensity: PreprocessSpec['intensity'], resize: PreprocessSpec['resize'] = 'bilinear'): PreprocessSpec {
  return parsePreprocessSpec({ size: { height: size, width: size }, resize, intensity, channels: 1 });
}

// 1024x1024 8-bit chest phantom with one lesion, JPEG Baseline (libjpeg-turbo via sharp, q95), as SIIM.
const chest = chestPhantom(mulberry32(7), 1024, { lesions: 1 });
const jpeg = await sharp(chest.pixels, { raw: { width: 1024, height: 1024, channels: 1 } })
  .toColourspace('b-w')
  .jpeg({ quality: 95, progressive: false, mozjpeg: false })
  .toBuffer();
const chestDicom = writeDicom({
  rows: 1024, columns: 1024, bitsAllocated: 8, bitsStored: 8, highBit: 7, pixelRepresentation: 0,
  photometricInterpretation: 'MONOCHROME2', samplesPerPixel: 1, modality: 'CR',
  sopInstanceUid: '2.25.1', transferSyntaxUid: TS.JPEGBaseline, encapsulatedFrames: [new Uint8Array(jpeg)],
});

// 512x512 signed 16-bit CT-like slice: body disk with soft tissue, bone ring, noise; HU = raw - 1024.
const ct = new Int16Array(512 * 512);
const rng = mulberry32(11);
for (let r = 0; r < 512; r++) {
  for (let c = 0; c < 512; c++) {
    const d = Math.hypot(r - 256, c - 256);
    const hu = d > 220 ? -1000 : d > 200 ? 700 : 40 + 30 * Math.sin(r / 17) * Math.cos(c / 23);
    ct[r * 512 + c] = Math.round(hu + 1024 + (rng() - 0.5) * 40);
  }
}
const ctDicom = writeDicom({
  rows: 512, columns: 512, bitsAllocated: 16, bitsStored: 12, highBit: 11, pixelRepresentation: 1,
  photometricInterpretation: 'MONOCHROME2', samplesPerPixel: 1, modality: 'CT', rescaleSlope: 1, rescaleIntercept: -1024,
  windowCenter: 40, windowWidth: 400, sopInstanceUid: '2.25.2', pixels: ct, transferSyntaxUid: TS.ExplicitVRLittleEndian,
});

const chestImage = await decodeDicom(chestDicom);
const ctImage = await decodeDicom(ctDicom);

await measure('1024² JPEG Baseline DICOM: decode only', () => decodeDicom(chestDicom));
for (const size of [256, 512]) {
  const s = spec(size, { kind: 'minmax' });
  await measure(`1024² JPEG Baseline DICOM: decode + preprocess -> ${size}²`, async () => toTensor(await decodeDicom(chestDicom), s), 20);
}
// The JPEG decode's floor: libjpeg's DCT scaling (sharp's shrink-on-load, picked for a 1024 -> 113
// resize) skips most of the inverse DCT, so what is left is mostly entropy decoding, which no scale skips.
await measure('1024² JPEG codestream alone: sharp decode, full size', () => sharp(jpeg).toColourspace('b-w').raw().toBuffer());
await measure('1024² JPEG codestream alone: sharp decode at 1/8 scale (entropy-decoding floor)', () =>
  sharp(jpeg).resize(113, 113, { kernel: 'nearest', fastShrinkOnLoad: true }).toColourspace('b-w').raw().toBuffer(),
);
await measure('512² 16-bit DICOM: decode only', () => decodeDicom(ctDicom));
for (const size of [256, 512]) {
  const s = spec(size, { kind: 'dicom-window', fallback: 'minmax' });
  await measure(`512² 16-bit DICOM: decode + preprocess -> ${size}²`, async () => toTensor(await decodeDicom(ctDicom), s));
}
for (const size of [256, 512]) {
  for (const resize of ['bilinear', 'area'] as const) {
    const s = spec(size, { kind: 'minmax' }, resize);
    await measure(`preprocess only (1024² decoded) -> ${size}², ${resize}`, () => toTensor(chestImage, s));
  }
}
const ctSpec = spec(256, { kind: 'dicom-window', fallback: 'minmax' });
await measure('preprocess only (512² decoded) -> 256²', () => toTensor(ctImage, ctSpec));

// RLE on the phantom's lesion mask.
const mask = chest.mask;
const encoded = new Map(RLE_FORMATS.map((f) => [f, encodeMask(mask, f)]));
for (const f of RLE_FORMATS) {
  if (!masksEqual(decodeMask(encoded.get(f)!, f, 1024, 1024), mask)) throw new Error(`${f} round trip failed`);
  await measure(`RLE ${f}: encode 1024² mask`, () => encodeMask(mask, f), 5);
  await measure(`RLE ${f}: decode 1024² mask`, () => decodeMask(encoded.get(f)!, f, 1024, 1024), 5);
}

// The resize alone: float32 JS resampler (what toTensor uses) vs sharp on 16-bit raw.
const unit = Float32Array.from(chestImage.pixels, (v) => v / 255);
const u16 = Uint16Array.from(unit, (v) => Math.round(v * 65535));
for (const size of [256, 512]) {
  await measure(`resize only, JS float32 bilinear 1024² -> ${size}²`, () => resampleFloat32(unit, 1024, 1024, size, size, 'bilinear'));
  await measure(`resize only, sharp 16-bit linear 1024² -> ${size}²`, () =>
    sharp(u16, { raw: { width: 1024, height: 1024, channels: 1 } }).resize(size, size, { fit: 'fill', kernel: 'linear' }).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer(),
  );
}

const width = Math.max(...rows.map((r) => r.what.length));
console.log(`imaging bench: node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} x${availableParallelism()}, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}, sharp concurrency ${sharp.concurrency()}`);
console.log(`lesion mask area ${maskArea(mask)} px; kaggle RLE ${(encoded.get('kaggle') as string).split(' ').length / 2} runs; ${RUNS} runs after ${WARMUP} warm-up`);
console.log(`${'what'.padEnd(width)}  median ms   min ms   target`);
for (const r of rows) {
  const verdict = r.target === undefined ? '' : `< ${r.target} ms ${r.median < r.target ? 'ok' : 'MISSED'}`;
  console.log(`${r.what.padEnd(width)}  ${r.median.toFixed(2).padStart(9)}  ${r.min.toFixed(2).padStart(7)}   ${verdict}`);
}
