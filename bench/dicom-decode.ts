/**
 * DICOM decode timings on this machine (not a test): median and min of N runs after warm-up.
 *
 *   node --import tsx bench/dicom-decode.ts [--runs 50] [--warmup 10]
 *
 * - 1024x1024 8-bit JPEG Baseline, grayscale, encoded by sharp (as SIIM chest X-rays are): the
 *   service's hot path, target < 20 ms for decode (+ preprocess, measured in bench/imaging.ts);
 *   with the codec alone (sharp) for comparison, so the DICOM overhead is visible;
 * - 512x512 16-bit signed (12 stored, CT-like rescale) native explicit VR LE, and the same image
 *   compressed with RLE, JPEG Lossless SV1, JPEG-LS lossless and JPEG 2000 lossless (needs dcmtk
 *   and opj_compress on PATH, as the tests do).
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { decodeDicom } from '../core/dicom/decode.ts';
import { baseInput, makeDicomVariant, makeTestPixels } from '../core/dicom/testing/fixtures.ts';
import { TS } from '../core/dicom/transfer-syntax.ts';
import { newUid, writeDicom } from '../core/dicom/write.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '50' }, warmup: { type: 'string', default: '10' } } });
const RUNS = Number(values.runs);
const WARMUP = Number(values.warmup);

async function measure(what: string, bytes: number, fn: () => Promise<unknown>, target?: number): Promise<void> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const t: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  const median = t[Math.floor(t.length / 2)];
  const verdict = target === undefined ? '' : median <= target ? `  (target ${target} ms: met)` : `  (target ${target} ms: MISSED)`;
  console.log(`${what.padEnd(58)} ${(bytes / 1024).toFixed(0).padStart(6)} KiB  median ${median.toFixed(2).padStart(7)} ms  min ${t[0].toFixed(2).padStart(7)} ms${verdict}`);
}

console.log(`node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg()[0].toFixed(2)}; ${RUNS} runs after ${WARMUP} warm-up`);

// 1024x1024 chest-like 8-bit image, JPEG quality 90 like common exports.
const cxr = makeTestPixels({ rows: 1024, columns: 1024, bitsAllocated: 8, noise: 0.05, seed: 1 }) as Uint8Array;
const jpeg = await sharp(cxr, { raw: { width: 1024, height: 1024, channels: 1 } }).toColourspace('b-w').jpeg({ quality: 90 }).toBuffer();
const cxrDicom = writeDicom({
  rows: 1024,
  columns: 1024,
  bitsAllocated: 8,
  sopInstanceUid: newUid(),
  modality: 'CR',
  transferSyntaxUid: TS.JPEGBaseline,
  encapsulatedFrames: [jpeg],
});
await measure('1024x1024 8-bit JPEG Baseline: decodeDicom', cxrDicom.length, () => decodeDicom(cxrDicom), 20);
await measure('1024x1024 8-bit JPEG Baseline: sharp alone (codec only)', jpeg.length, () => sharp(jpeg).extractChannel(0).raw().toBuffer());

const ct = baseInput(
  { rows: 512, columns: 512, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 1, noise: 0.02, seed: 2 },
  { modality: 'CT', rescaleIntercept: -1024, rescaleSlope: 1, windowCenter: 40, windowWidth: 400 },
);
const native = writeDicom(ct);
await measure('512x512 16-bit signed, Explicit VR Little Endian', native.length, () => decodeDicom(native));
const bigEndian = writeDicom({ ...ct, transferSyntaxUid: TS.ExplicitVRBigEndian });
await measure('512x512 16-bit signed, Explicit VR Big Endian', bigEndian.length, () => decodeDicom(bigEndian));
for (const [name, ts] of [
  ['RLE Lossless', TS.RLELossless],
  ['JPEG Lossless SV1', TS.JPEGLosslessSV1],
  ['JPEG-LS Lossless', TS.JPEGLSLossless],
  ['JPEG 2000 Lossless', TS.JPEG2000Lossless],
] as const) {
  let bytes: Uint8Array;
  try {
    bytes = await makeDicomVariant(ct, ts);
  } catch (e) {
    console.log(`512x512 16-bit signed, ${name}: skipped (${(e as Error).message.split('\n')[0]})`);
    continue;
  }
  await measure(`512x512 16-bit signed, ${name}`, bytes.length, () => decodeDicom(bytes));
}
