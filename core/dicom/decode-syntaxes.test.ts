/**
 * Every supported transfer syntax decodes; lossless ones are pixel-identical to the uncompressed
 * original for 8-bit, 16-bit unsigned (12 stored) and 16-bit signed (12 stored) images; lossy ones
 * are within a stated tolerance of the original AND match the reference decoder (dcmtk / OpenJPEG).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import dicomParser from 'dicom-parser';
import { decodeDicom } from './decode.ts';
import { TS, supportedTransferSyntaxes } from './transfer-syntax.ts';
import { baseInput, makeDicomVariant, makeTestPixels, referenceDecode, referenceDecodeJ2k, type TestImageSpec } from './testing/fixtures.ts';
import { newUid, writeDicom } from './write.ts';

const KINDS: Array<{ name: string; spec: TestImageSpec }> = [
  { name: '8-bit', spec: { rows: 40, columns: 56, bitsAllocated: 8 } },
  { name: '16-bit unsigned, 12 stored', spec: { rows: 40, columns: 56, bitsAllocated: 16, bitsStored: 12 } },
  { name: '16-bit signed, 12 stored', spec: { rows: 40, columns: 56, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 1 } },
];

const LOSSLESS = [
  TS.ImplicitVRLittleEndian,
  TS.ExplicitVRLittleEndian,
  TS.ExplicitVRBigEndian,
  TS.DeflatedExplicitVRLittleEndian,
  TS.RLELossless,
  TS.JPEGLossless,
  TS.JPEGLosslessSV1,
  TS.JPEGLSLossless,
  TS.JPEG2000Lossless,
];

function assertSameValues(actual: Float32Array, expected: ArrayLike<number>, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${label}: pixel ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

/** Mean and max absolute error, as fractions of the stored range. */
function errorStats(actual: Float32Array, expected: ArrayLike<number>, range: number): { mean: number; max: number } {
  let sum = 0;
  let max = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / expected.length / range, max: max / range };
}

describe('lossless transfer syntaxes are pixel-identical to the original', () => {
  for (const kind of KINDS) {
    it(`${kind.name}: ${LOSSLESS.length} syntaxes`, async () => {
      const input = baseInput({ ...kind.spec, seed: 7 });
      const original = Array.from(input.pixels!);
      for (const ts of LOSSLESS) {
        const bytes = await makeDicomVariant(input, ts);
        const image = await decodeDicom(bytes);
        assert.equal(image.transferSyntaxUid, ts);
        assert.equal(image.rows, 40);
        assert.equal(image.columns, 56);
        assertSameValues(image.pixels, original, `${kind.name} ${image.transferSyntaxName}`);
        assert.equal(image.min, Math.min(...original));
        assert.equal(image.max, Math.max(...original));
      }
    });
  }
});

describe('lossy transfer syntaxes', () => {
  // Tolerances (fractions of the stored range; smooth content with 2 % noise):
  //   vs the original: mean abs error <= 1 %, max abs error <= 10 %;
  //   vs the reference decoder (dcmdjpeg / dcmdjpls / opj_decompress) of the same file: identical (JPEG-LS,
  //   JPEG 2000, 12-bit JPEG share the decoder library) or within 1 (8-bit JPEG through sharp/mozjpeg).
  const MEAN = 0.01;
  const MAX = 0.1;

  async function checkAgainstDcmtk(ts: string, spec: TestImageSpec, refTolerance: number) {
    const input = baseInput({ ...spec, seed: 3 });
    const bytes = await makeDicomVariant(input, ts);
    const image = await decodeDicom(bytes);
    assert.equal(image.transferSyntaxUid, ts);
    const bits = spec.bitsStored ?? spec.bitsAllocated;
    const stats = errorStats(image.pixels, input.pixels!, 2 ** bits - 1);
    assert.ok(stats.mean <= MEAN && stats.max <= MAX, `${image.transferSyntaxName} ${bits}-bit error ${JSON.stringify(stats)}`);
    const reference = await decodeDicom(await referenceDecode(bytes, ts));
    const ref = errorStats(image.pixels, reference.pixels, 1);
    assert.ok(ref.max <= refTolerance, `${image.transferSyntaxName} ${bits}-bit differs from the reference decoder by up to ${ref.max}`);
    return image;
  }

  it('JPEG Baseline 8-bit (dcmtk) and the SIIM case: a sharp-encoded 8-bit stream', async () => {
    await checkAgainstDcmtk(TS.JPEGBaseline, { rows: 64, columns: 80, bitsAllocated: 8 }, 1);
    const px = makeTestPixels({ rows: 64, columns: 80, bitsAllocated: 8, seed: 5 }) as Uint8Array;
    const jpeg = await sharp(px, { raw: { width: 80, height: 64, channels: 1 } }).toColourspace('b-w').jpeg({ quality: 90 }).toBuffer();
    const bytes = writeDicom({ rows: 64, columns: 80, bitsAllocated: 8, sopInstanceUid: newUid(), transferSyntaxUid: TS.JPEGBaseline, encapsulatedFrames: [jpeg] });
    const image = await decodeDicom(bytes);
    const stats = errorStats(image.pixels, px, 255);
    assert.ok(stats.mean <= MEAN && stats.max <= MAX, JSON.stringify(stats));
    const direct = await sharp(jpeg).extractChannel(0).raw().toBuffer();
    assertSameValues(image.pixels, direct, 'sharp-encoded baseline vs sharp decode');
  });

  it('JPEG Extended (Process 2 & 4), 8-bit and 12-bit', async () => {
    await checkAgainstDcmtk(TS.JPEGExtended, { rows: 64, columns: 80, bitsAllocated: 8 }, 1);
    const image = await checkAgainstDcmtk(TS.JPEGExtended, { rows: 64, columns: 80, bitsAllocated: 16, bitsStored: 12 }, 0);
    assert.equal(image.bitsStored, 12);
  });

  it('JPEG Extended 12-bit of signed data keeps modality values through the Rescale dcmtk writes', async () => {
    await checkAgainstDcmtk(TS.JPEGExtended, { rows: 64, columns: 80, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 1 }, 0);
  });

  it('JPEG-LS near-lossless, 8-bit and 12-bit (dcmcjpls NEAR=2, so error <= 2)', async () => {
    for (const spec of [{ rows: 64, columns: 80, bitsAllocated: 8 }, { rows: 64, columns: 80, bitsAllocated: 16, bitsStored: 12 }] as TestImageSpec[]) {
      const input = baseInput({ ...spec, seed: 9 });
      const bytes = await makeDicomVariant(input, TS.JPEGLSNearLossless);
      const image = await decodeDicom(bytes);
      const stats = errorStats(image.pixels, input.pixels!, 1);
      assert.ok(stats.max <= 2, `near-lossless max error ${stats.max}`);
      const reference = await decodeDicom(await referenceDecode(bytes, TS.JPEGLSNearLossless));
      assertSameValues(image.pixels, reference.pixels, 'JPEG-LS near-lossless vs dcmdjpls');
    }
  });

  it('JPEG 2000 lossy (opj_compress -r 8), unsigned and signed, matches opj_decompress exactly', async () => {
    for (const spec of [
      { rows: 64, columns: 80, bitsAllocated: 8 },
      { rows: 64, columns: 80, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 1 },
    ] as TestImageSpec[]) {
      const input = baseInput({ ...spec, seed: 11 });
      const bytes = await makeDicomVariant(input, TS.JPEG2000);
      const image = await decodeDicom(bytes);
      const bits = spec.bitsStored ?? 8;
      const stats = errorStats(image.pixels, input.pixels!, 2 ** bits - 1);
      assert.ok(stats.mean <= MEAN && stats.max <= MAX, JSON.stringify(stats));
      const ds = dicomParser.parseDicom(bytes);
      const frag = ds.elements.x7fe00010.fragments![0];
      const reference = await referenceDecodeJ2k(bytes.subarray(frag.position, frag.position + frag.length), spec.pixelRepresentation === 1, bits);
      assertSameValues(image.pixels, reference, `JPEG 2000 ${bits}-bit vs opj_decompress`);
    }
  });
});

it('the registry names every syntax this suite covers as supported', () => {
  const supported = new Set(supportedTransferSyntaxes().map((t) => t.uid));
  for (const uid of [...LOSSLESS, TS.JPEGBaseline, TS.JPEGExtended, TS.JPEGLSNearLossless, TS.JPEG2000]) assert.ok(supported.has(uid), uid);
  assert.equal(supported.size, 13);
});
