/**
 * Pixel semantics and file layouts: no-preamble files, MONOCHROME1, rescale, sign, BitsStored /
 * HighBit masking, colour (RGB interleaved/planar, YBR_FULL, YBR_FULL_422), multi-frame, window,
 * and the metadata that may (and may not) leave the decoder.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import dicomParser from 'dicom-parser';
import { decodeDicom } from './decode.ts';
import { isDicomError } from './errors.ts';
import { TS } from './transfer-syntax.ts';
import { baseInput, makeDicomVariant, makeTestPixels, modifyDicom, toPlanar } from './testing/fixtures.ts';
import { newUid, writeDicom, type DicomWriteInput } from './write.ts';

function assertValues(actual: Float32Array, expected: ArrayLike<number>, label: string, tolerance = 0): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (Math.abs(actual[i] - expected[i]) > tolerance) assert.fail(`${label}: pixel ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

const luma = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;

describe('file layouts', () => {
  const input = baseInput({ rows: 24, columns: 30, bitsAllocated: 16, bitsStored: 12, seed: 2 });
  const expected = Array.from(input.pixels!);

  it('bare implicit VR dataset without preamble or meta', async () => {
    const bytes = writeDicom({ ...input, preamble: false });
    assert.notEqual(String.fromCharCode(...bytes.subarray(128, 132)), 'DICM');
    const image = await decodeDicom(bytes);
    assert.equal(image.transferSyntaxUid, TS.ImplicitVRLittleEndian);
    assertValues(image.pixels, expected, 'raw implicit');
  });

  it('explicit VR dataset without preamble or meta (encoding recognised from the bytes)', async () => {
    const full = writeDicom({ ...input, transferSyntaxUid: TS.ExplicitVRLittleEndian });
    const groupLength = new DataView(full.buffer).getUint32(132 + 8, true);
    const image = await decodeDicom(full.subarray(132 + 12 + groupLength));
    assert.equal(image.transferSyntaxUid, TS.ExplicitVRLittleEndian);
    assertValues(image.pixels, expected, 'raw explicit');
  });

  it('group 0002 meta without the 128-byte preamble and DICM', async () => {
    const full = writeDicom({ ...input, transferSyntaxUid: TS.ExplicitVRBigEndian });
    const image = await decodeDicom(full.subarray(132));
    assert.equal(image.transferSyntaxUid, TS.ExplicitVRBigEndian);
    assertValues(image.pixels, expected, 'meta without preamble');
  });

  it('a meta header that lacks (0002,0010) falls back to the encoding the dataset shows', async () => {
    for (const ts of [TS.ImplicitVRLittleEndian, TS.ExplicitVRLittleEndian]) {
      const bytes = writeDicom({ ...input, transferSyntaxUid: ts }).slice();
      // Re-tag (0002,0010) as (0002,0016) (Source AE Title): the meta stays well-formed but names no syntax.
      const ds = dicomParser.readPart10Header(bytes);
      const at = ds.elements.x00020010.dataOffset - 8;
      assert.deepEqual([...bytes.subarray(at, at + 4)], [0x02, 0x00, 0x10, 0x00]);
      bytes[at + 2] = 0x16;
      const image = await decodeDicom(bytes);
      assert.equal(image.transferSyntaxUid, ts);
      assertValues(image.pixels, expected, `meta without syntax, ${ts}`);
    }
  });

  it('8-bit pixel data in an OW element of a big endian file is un-swapped', async () => {
    const px = makeTestPixels({ rows: 10, columns: 12, bitsAllocated: 8, seed: 4 }) as Uint8Array;
    const bytes = writeDicom({ rows: 10, columns: 12, bitsAllocated: 8, pixels: px, sopInstanceUid: newUid(), transferSyntaxUid: TS.ExplicitVRBigEndian }).slice();
    const el = dicomParser.parseDicom(bytes).elements.x7fe00010;
    assert.equal(String.fromCharCode(bytes[el.dataOffset - 8], bytes[el.dataOffset - 7]), 'OB');
    bytes[el.dataOffset - 7] = 0x57; // 'W'
    for (let i = el.dataOffset; i < el.dataOffset + el.length; i += 2) [bytes[i], bytes[i + 1]] = [bytes[i + 1], bytes[i]];
    assertValues((await decodeDicom(bytes)).pixels, px, 'BE OW 8-bit');
  });
});

describe('monochrome semantics', () => {
  it('MONOCHROME1 is mirrored in its range, window centre with it', async () => {
    const px = makeTestPixels({ rows: 16, columns: 16, bitsAllocated: 8, seed: 1 });
    const image = await decodeDicom(
      writeDicom({ rows: 16, columns: 16, bitsAllocated: 8, pixels: px, photometricInterpretation: 'MONOCHROME1', windowCenter: 100, windowWidth: 50, sopInstanceUid: newUid() }),
    );
    assertValues(image.pixels, Array.from(px, (v) => 255 - v), 'MONOCHROME1 8-bit');
    assert.deepEqual(image.window, { center: 155, width: 50 });
    assert.equal(image.photometricInterpretation, 'MONOCHROME1');
    assert.equal(image.min, 255 - Math.max(...px));
  });

  it('MONOCHROME1 with rescale mirrors in modality units (and survives JPEG-LS)', async () => {
    const input = baseInput(
      { rows: 16, columns: 20, bitsAllocated: 16, bitsStored: 12, seed: 8 },
      { photometricInterpretation: 'MONOCHROME1', rescaleSlope: 2, rescaleIntercept: -100, windowCenter: 1000, windowWidth: 400 },
    );
    // stored 0..4095 -> modality -100..8090; mirror sum 7990
    const expected = Array.from(input.pixels!, (v) => 7990 - (2 * v - 100));
    for (const ts of [TS.ExplicitVRLittleEndian, TS.JPEGLSLossless]) {
      const image = await decodeDicom(await makeDicomVariant(input, ts));
      assertValues(image.pixels, expected, `MONOCHROME1 rescaled ${ts}`);
      assert.deepEqual(image.window, { center: 6990, width: 400 });
    }
  });

  it('CT: 12-bit unsigned with RescaleIntercept -1024 gives Hounsfield units', async () => {
    const input = baseInput({ rows: 20, columns: 20, bitsAllocated: 16, bitsStored: 12, seed: 5 }, { modality: 'CT', rescaleIntercept: -1024, rescaleSlope: 1 });
    const image = await decodeDicom(writeDicom(input));
    assertValues(image.pixels, Array.from(input.pixels!, (v) => v - 1024), 'HU');
    assert.equal(image.min, -1024); // the fixture puts the stored minimum (0) in a corner
    assert.equal(image.max, 4095 - 1024);
    assert.equal(image.modality, 'CT');
  });

  it('signed 16-bit with a fractional slope', async () => {
    const input = baseInput({ rows: 12, columns: 12, bitsAllocated: 16, pixelRepresentation: 1, seed: 6 }, { rescaleSlope: 0.5, rescaleIntercept: 10 });
    const image = await decodeDicom(writeDicom(input));
    assertValues(image.pixels, Array.from(input.pixels!, (v) => v * 0.5 + 10), 'signed rescaled');
    assert.equal(image.min, -32768 * 0.5 + 10);
  });

  it('bits outside BitsStored are masked off, and stored bits are read at HighBit', async () => {
    const stored = makeTestPixels({ rows: 8, columns: 8, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 1, seed: 3 }) as Int16Array;
    // HighBit 11, with overlay-like garbage in bits 12..15 (sign extension must come from bit 11, not bit 15).
    const low = Uint16Array.from(stored, (v, i) => ((v & 0x0fff) | ((i * 0x1000) & 0xf000)) & 0xffff);
    // HighBit 15: the 12 stored bits sit in the top of the word, garbage below.
    const high = Uint16Array.from(stored, (v, i) => (((v & 0x0fff) << 4) | (i & 0xf)) & 0xffff);
    const common = { rows: 8, columns: 8, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 1, sopInstanceUid: newUid() } as const;
    assertValues((await decodeDicom(writeDicom({ ...common, highBit: 11, pixels: low }))).pixels, stored, 'HighBit 11');
    assertValues((await decodeDicom(writeDicom({ ...common, highBit: 15, pixels: high }))).pixels, stored, 'HighBit 15');
  });
});

describe('colour', () => {
  const spec = { rows: 18, columns: 22, bitsAllocated: 8, samplesPerPixel: 3, seed: 12 } as const;
  const rgb = makeTestPixels(spec) as Uint8Array;
  const n = spec.rows * spec.columns;
  const expected = Array.from({ length: n }, (_, i) => luma(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]));
  const input: DicomWriteInput = { ...spec, pixels: rgb, photometricInterpretation: 'RGB', sopInstanceUid: newUid() };

  it('RGB interleaved and planar give BT.601 luma', async () => {
    const a = await decodeDicom(writeDicom(input));
    assertValues(a.pixels, expected, 'RGB interleaved', 1e-3);
    const b = await decodeDicom(writeDicom({ ...input, pixels: toPlanar(rgb, n), planarConfiguration: 1 }));
    assertValues(b.pixels, expected, 'RGB planar', 1e-3);
    assert.equal(a.samplesPerPixel, 3);
  });

  it('RGB through RLE, JPEG-LS and JPEG 2000 lossless is exact', async () => {
    for (const ts of [TS.RLELossless, TS.JPEGLSLossless, TS.JPEG2000Lossless, TS.JPEGLosslessSV1]) {
      const image = await decodeDicom(await makeDicomVariant(input, ts));
      assertValues(image.pixels, expected, `RGB ${ts}`, 1e-3);
    }
  });

  it('YBR_FULL: luma is the Y sample', async () => {
    const ybr = rgb.slice();
    const image = await decodeDicom(writeDicom({ ...input, pixels: ybr, photometricInterpretation: 'YBR_FULL' }));
    assertValues(image.pixels, Array.from({ length: n }, (_, i) => ybr[3 * i]), 'YBR_FULL');
  });

  it('native YBR_FULL_422 (Y1 Y2 Cb Cr pairs): luma is each pixel own Y', async () => {
    const image = await decodeDicom(writeDicom({ ...input, photometricInterpretation: 'YBR_FULL_422' }));
    assertValues(image.pixels, Array.from({ length: n }, (_, i) => rgb[3 * i]), 'YBR_FULL_422');
  });

  it('colour JPEG Baseline (dcmtk writes YBR_FULL_422) decodes to luma close to the original', async () => {
    // Tolerance: mean abs luma error <= 1.5, max <= 25.5 (10 % of range; the fixture's single-pixel
    // extremes at two corners are smeared by 4:2:2 chroma subsampling).
    const smooth = makeTestPixels({ ...spec, noise: 0 }) as Uint8Array;
    const image = await decodeDicom(await makeDicomVariant({ ...input, pixels: smooth }, TS.JPEGBaseline));
    assert.equal(image.photometricInterpretation, 'YBR_FULL_422');
    let sum = 0;
    let max = 0;
    for (let i = 0; i < n; i++) {
      const d = Math.abs(image.pixels[i] - luma(smooth[3 * i], smooth[3 * i + 1], smooth[3 * i + 2]));
      sum += d;
      max = Math.max(max, d);
    }
    assert.ok(sum / n <= 1.5 && max <= 25.5, `colour JPEG luma error mean ${sum / n}, max ${max}`);
  });
});

describe('multi-frame', () => {
  const frames = 3;
  const input = baseInput({ rows: 12, columns: 14, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 1, frames, seed: 21 });
  const per = 12 * 14;
  const frame = (f: number) => Array.from(input.pixels!.subarray(f * per, (f + 1) * per));

  it('selects each frame, native and encapsulated', async () => {
    for (const ts of [TS.ExplicitVRLittleEndian, TS.ExplicitVRBigEndian, TS.RLELossless, TS.JPEGLSLossless, TS.JPEG2000Lossless, TS.JPEGLossless]) {
      const bytes = await makeDicomVariant(input, ts);
      for (let f = 0; f < frames; f++) {
        const image = await decodeDicom(bytes, { frame: f });
        assert.equal(image.frame, f);
        assert.equal(image.numberOfFrames, frames);
        assertValues(image.pixels, frame(f), `${ts} frame ${f}`);
      }
    }
  });

  it('default frame is 0', async () => {
    const image = await decodeDicom(writeDicom(input));
    assertValues(image.pixels, frame(0), 'default frame');
  });

  it('FRAME_OUT_OF_RANGE for frames past the end, negative or fractional', async () => {
    const bytes = writeDicom(input);
    for (const f of [3, 100, -1, 1.5]) {
      await assert.rejects(decodeDicom(bytes, { frame: f }), (e: unknown) => isDicomError(e) && e.code === 'FRAME_OUT_OF_RANGE' && /3 frame/.test(e.message));
    }
    await assert.rejects(decodeDicom(writeDicom(baseInput({ rows: 4, columns: 4, bitsAllocated: 8 })), { frame: 1 }), { code: 'FRAME_OUT_OF_RANGE' });
  });
});

describe('window and metadata', () => {
  it('reads WindowCenter/WindowWidth, the first pair when multi-valued', async () => {
    const input = baseInput({ rows: 8, columns: 8, bitsAllocated: 16, bitsStored: 12 }, { windowCenter: 40, windowWidth: 400 });
    assert.deepEqual((await decodeDicom(writeDicom(input))).window, { center: 40, width: 400 });
    const multi = await modifyDicom(writeDicom(input), ['(0028,1050)=-600\\40', '(0028,1051)=1500\\400']);
    assert.deepEqual((await decodeDicom(multi)).window, { center: -600, width: 1500 });
    assert.equal((await decodeDicom(writeDicom({ ...input, windowCenter: undefined, windowWidth: undefined }))).window, undefined);
  });

  it('fills SOP Instance UID and Modality, never patient attributes', async () => {
    const sop = newUid();
    const bytes = writeDicom({
      ...baseInput({ rows: 8, columns: 8, bitsAllocated: 8 }),
      sopInstanceUid: sop,
      modality: 'CR',
      patientName: 'Doe^Jane',
      patientId: 'PID-12345',
      bodyPartExamined: 'CHEST',
    });
    const image = await decodeDicom(bytes);
    assert.equal(image.sopInstanceUid, sop);
    assert.equal(image.modality, 'CR');
    const { pixels: _pixels, ...meta } = image;
    const json = JSON.stringify(meta);
    assert.ok(!json.includes('Doe') && !json.includes('PID-12345'), json);
    assert.ok(!Object.keys(image).some((k) => /patient/i.test(k)));
  });
});
