/**
 * A monochrome 8/16-bit frame is decoded to raw samples + a table (DecodedImage.samples), its float
 * image made only when read. The model tensor made through the table must equal, bit for bit, the one
 * made from the float image (the path the trainer's stored models were fitted on), for every resize
 * method and intensity kind; and `pixels`, min and max must be what the eager decoder gave.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDicom } from '../dicom/decode.ts';
import type { DecodedImage } from '../dicom/types.ts';
import { newUid, writeDicom, type DicomWriteInput } from '../dicom/write.ts';
import { parsePreprocessSpec, toTensorSync } from './index.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rows = 97;
const columns = 131;

type Case = Pick<DicomWriteInput, 'bitsAllocated' | 'bitsStored' | 'pixelRepresentation' | 'rescaleSlope' | 'rescaleIntercept' | 'photometricInterpretation'> & {
  name: string;
  make: (r: () => number) => Uint8Array | Uint16Array | Int16Array;
};

const CASES: Case[] = [
  { name: '8-bit', bitsAllocated: 8, bitsStored: 8, pixelRepresentation: 0, make: (r: () => number) => Uint8Array.from({ length: rows * columns }, () => Math.floor(r() * 256)) },
  { name: '12-bit in 16, rescaled', bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, rescaleSlope: 0.5, rescaleIntercept: -1024, make: (r: () => number) => Uint16Array.from({ length: rows * columns }, () => Math.floor(r() * 4096)) },
  { name: 'signed 16-bit, MONOCHROME1', bitsAllocated: 16, bitsStored: 16, pixelRepresentation: 1, photometricInterpretation: 'MONOCHROME1', make: (r: () => number) => Int16Array.from({ length: rows * columns }, () => Math.floor(r() * 6000) - 3000) },
];

/** The same image with its float image made and no table: the decoder's output before tables. */
function eager(img: DecodedImage): DecodedImage {
  const { samples: _drop, ...rest } = img;
  return { ...rest, pixels: Float32Array.from(img.pixels) };
}

for (const c of CASES) {
  test(`${c.name}: table samples give the float image's tensor bit for bit, and the same pixels, min and max`, async () => {
    const { make, name: _n, ...header } = c;
    const bytes = writeDicom({ rows, columns, pixels: make(rng(rows + c.bitsAllocated)), sopInstanceUid: newUid(), modality: 'DX', windowCenter: 40, windowWidth: 400, ...header });
    const img = await decodeDicom(bytes);
    assert.ok(img.samples, 'decoded to table samples');
    const px = img.pixels;
    assert.equal(px.length, rows * columns);
    for (let i = 0; i < px.length; i++) assert.equal(px[i], img.samples!.lut[img.samples!.data[i]!], `pixel ${i}`);
    let min = Infinity;
    let max = -Infinity;
    for (const v of px) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    assert.equal(img.min, min);
    assert.equal(img.max, max);
    assert.strictEqual(img.pixels, px, 'made once');

    const fresh = await decodeDicom(bytes);
    for (const resize of ['nearest', 'bilinear', 'bicubic', 'lanczos3', 'area'] as const) {
      for (const intensity of [{ kind: 'minmax' }, { kind: 'zscore', clip: 3 }, { kind: 'window', center: 100, width: 900 }, { kind: 'dicom-window' }, { kind: 'range', low: 0, high: 255 }]) {
        for (const size of [{ height: 32, width: 48 }, { height: rows, width: columns }, { height: 200, width: 150 }]) {
          const spec = parsePreprocessSpec({ size, resize, intensity, normalize: { mean: [0.2], std: [0.3] }, channels: 2 });
          const want = toTensorSync(eager(img), spec);
          const got = toTensorSync(fresh, spec);
          assert.deepEqual(got, want, `${resize} ${intensity.kind} ${size.height}x${size.width}`);
        }
      }
    }
  });
}

test('native samples are copied: reusing the caller\'s bytes afterwards does not change the image', async () => {
  const px = Uint8Array.from({ length: 64 * 64 }, (_, i) => i % 251);
  const bytes = writeDicom({ rows: 64, columns: 64, bitsAllocated: 8, pixels: px, sopInstanceUid: newUid() });
  const img = await decodeDicom(bytes);
  const before = toTensorSync(img, parsePreprocessSpec({ size: { height: 16, width: 16 }, intensity: { kind: 'minmax' } }));
  bytes.fill(0x55);
  const after = toTensorSync(img, parsePreprocessSpec({ size: { height: 16, width: 16 }, intensity: { kind: 'minmax' } }));
  assert.deepEqual(after, before);
  assert.equal(img.pixels[5], 5);
});
