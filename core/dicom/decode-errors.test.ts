/**
 * Every typed error on a crafted bad file, one-line messages, and a property test: truncating or
 * corrupting valid files of every codec family only ever yields a DicomError, never a raw library
 * exception (and the wasm codecs keep working after many failures).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import dicomParser from 'dicom-parser';
import sharp from 'sharp';
import { decodeDicom } from './decode.ts';
import { isDicomError, type DicomErrorCode } from './errors.ts';
import { TS } from './transfer-syntax.ts';
import { baseInput, makeDicomVariant, makeTestPixels, modifyDicom } from './testing/fixtures.ts';
import { newUid, writeDicom } from './write.ts';

async function expectCode(promise: Promise<unknown>, code: DicomErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(isDicomError(e), `expected a DicomError, got ${String(e)}`);
    assert.equal(e.code, code, `code (message: ${e.message})`);
    assert.ok(!/[\r\n]/.test(e.message), `message must be one line: ${JSON.stringify(e.message)}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

function seededBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

function pixelDataElement(bytes: Uint8Array) {
  return dicomParser.parseDicom(bytes).elements.x7fe00010;
}

describe('NOT_DICOM', () => {
  it('random bytes, random bytes behind a fake DICM, a PNG, an empty buffer, text', async () => {
    await expectCode(decodeDicom(seededBytes(4096, 1)), 'NOT_DICOM');
    const fake = seededBytes(4096, 2);
    fake.set([0x44, 0x49, 0x43, 0x4d], 128);
    await expectCode(decodeDicom(fake), 'NOT_DICOM');
    const png = await sharp(Buffer.alloc(64 * 64, 128), { raw: { width: 64, height: 64, channels: 1 } }).png().toBuffer();
    await expectCode(decodeDicom(new Uint8Array(png)), 'NOT_DICOM');
    await expectCode(decodeDicom(new Uint8Array(0)), 'NOT_DICOM', /empty/);
    await expectCode(decodeDicom(new TextEncoder().encode('{"not":"dicom"}'.repeat(20))), 'NOT_DICOM');
  });
});

describe('TRUNCATED', () => {
  it('native file cut in the preamble, the magic, the meta, the dataset header and the pixel data', async () => {
    const bytes = writeDicom(baseInput({ rows: 32, columns: 32, bitsAllocated: 16 }, { modality: 'CT', windowCenter: 1, windowWidth: 2 }));
    const pd = pixelDataElement(bytes);
    const metaEnd = 132 + 12 + new DataView(bytes.buffer).getUint32(140, true);
    const cuts = [64, 130, 140, 200, metaEnd + 5, metaEnd + 40, pd.dataOffset - 6, pd.dataOffset + 10, pd.dataOffset + 1000, bytes.length - 1];
    for (const cut of cuts) await expectCode(decodeDicom(bytes.subarray(0, cut)), 'TRUNCATED');
  });

  it('bare implicit VR dataset cut in its pixel data', async () => {
    const bytes = writeDicom(baseInput({ rows: 32, columns: 32, bitsAllocated: 8 }, { preamble: false }));
    await expectCode(decodeDicom(bytes.subarray(0, bytes.length - 100)), 'TRUNCATED', /declares 1024 bytes/);
  });

  it('encapsulated file cut inside a fragment and just before the sequence delimiter', async () => {
    const bytes = await makeDicomVariant(baseInput({ rows: 32, columns: 32, bitsAllocated: 8 }), TS.JPEGLSLossless);
    const frag = pixelDataElement(bytes).fragments![0];
    await expectCode(decodeDicom(bytes.subarray(0, frag.position + (frag.length >> 1))), 'TRUNCATED');
    await expectCode(decodeDicom(bytes.subarray(0, frag.position + frag.length)), 'TRUNCATED', /delimiter/);
  });

  it('deflated file cut short', async () => {
    const bytes = writeDicom(baseInput({ rows: 64, columns: 64, bitsAllocated: 16 }, { transferSyntaxUid: TS.DeflatedExplicitVRLittleEndian }));
    await expectCode(decodeDicom(bytes.subarray(0, bytes.length - 200)), 'TRUNCATED');
  });
});

describe('NO_PIXEL_DATA', () => {
  it('an RT Plan-like object, and an SR-like one, name their SOP class', async () => {
    await expectCode(decodeDicom(writeDicom({ rows: 1, columns: 1, bitsAllocated: 8, sopInstanceUid: newUid(), omitPixelData: true })), 'NO_PIXEL_DATA', /1\.2\.840\.10008\.5\.1\.4\.1\.1\.481\.5/);
    const sr = writeDicom({ rows: 1, columns: 1, bitsAllocated: 8, sopInstanceUid: newUid(), omitPixelData: true, sopClassUid: '1.2.840.10008.5.1.4.1.1.88.11', modality: 'SR' });
    await expectCode(decodeDicom(sr), 'NO_PIXEL_DATA');
  });
});

describe('UNSUPPORTED_TRANSFER_SYNTAX', () => {
  it('MPEG2 names its UID and name; an unknown UID is named as unknown', async () => {
    const common = { rows: 16, columns: 16, bitsAllocated: 8 as const, sopInstanceUid: newUid(), encapsulatedFrames: [seededBytes(100, 3)] };
    await expectCode(
      decodeDicom(writeDicom({ ...common, transferSyntaxUid: '1.2.840.10008.1.2.4.100' })),
      'UNSUPPORTED_TRANSFER_SYNTAX',
      /1\.2\.840\.10008\.1\.2\.4\.100 \(MPEG2 Main Profile \/ Main Level\)/,
    );
    await expectCode(decodeDicom(writeDicom({ ...common, transferSyntaxUid: '1.2.840.10008.1.2.4.201' })), 'UNSUPPORTED_TRANSFER_SYNTAX', /High-Throughput JPEG 2000/);
    await expectCode(decodeDicom(writeDicom({ ...common, transferSyntaxUid: '1.2.3.4.5' })), 'UNSUPPORTED_TRANSFER_SYNTAX', /1\.2\.3\.4\.5 \(unknown/);
  });
});

describe('UNSUPPORTED_PIXEL_FORMAT', () => {
  it('BitsAllocated 12, PALETTE COLOR, BitsStored > BitsAllocated, SamplesPerPixel 4, Float Pixel Data', async () => {
    const bytes = writeDicom(baseInput({ rows: 8, columns: 8, bitsAllocated: 16, bitsStored: 12 }));
    await expectCode(decodeDicom(await modifyDicom(bytes, ['(0028,0100)=12'])), 'UNSUPPORTED_PIXEL_FORMAT', /BitsAllocated 12/);
    await expectCode(decodeDicom(await modifyDicom(bytes, ['(0028,0004)=PALETTE COLOR'])), 'UNSUPPORTED_PIXEL_FORMAT', /PALETTE COLOR/);
    await expectCode(decodeDicom(await modifyDicom(bytes, ['(0028,0101)=17'])), 'UNSUPPORTED_PIXEL_FORMAT', /BitsStored 17/);
    await expectCode(decodeDicom(await modifyDicom(bytes, ['(0028,0002)=4'])), 'UNSUPPORTED_PIXEL_FORMAT', /SamplesPerPixel 4/);
    const float = await modifyDicom(writeDicom({ rows: 1, columns: 1, bitsAllocated: 8, sopInstanceUid: newUid(), omitPixelData: true }), ['(7fe0,0008)=0\\0']);
    await expectCode(decodeDicom(float), 'UNSUPPORTED_PIXEL_FORMAT', /Float Pixel Data/);
  });
});

describe('DIMENSION_MISMATCH', () => {
  // Longer than needed is trailing padding and decodes (decode-real-files.test.ts).
  it('native Pixel Data shorter than Rows x Columns x frames says', async () => {
    const bytes = writeDicom(baseInput({ rows: 10, columns: 12, bitsAllocated: 16 }));
    await expectCode(decodeDicom(await modifyDicom(bytes, ['(0028,0010)=20'])), 'DIMENSION_MISMATCH', /240 bytes but .* needs 480/);
    await expectCode(decodeDicom(await modifyDicom(bytes, ['(0028,0008)=2'])), 'DIMENSION_MISMATCH');
  });

  it('a codestream whose size differs from the header, for JPEG (sharp path), JPEG 2000 and RLE', async () => {
    const px = makeTestPixels({ rows: 16, columns: 16, bitsAllocated: 8 }) as Uint8Array;
    const jpeg = await sharp(px, { raw: { width: 16, height: 16, channels: 1 } }).toColourspace('b-w').jpeg().toBuffer();
    const lying = { rows: 20, columns: 16, bitsAllocated: 8 as const, sopInstanceUid: newUid() };
    await expectCode(decodeDicom(writeDicom({ ...lying, transferSyntaxUid: TS.JPEGBaseline, encapsulatedFrames: [jpeg] })), 'DIMENSION_MISMATCH', /16x16 but the header says 16x20/);
    const j2k = await makeDicomVariant(baseInput({ rows: 16, columns: 16, bitsAllocated: 8 }), TS.JPEG2000Lossless);
    await expectCode(decodeDicom(await modifyDicom(j2k, ['(0028,0011)=17'])), 'DIMENSION_MISMATCH');
    const rle = await makeDicomVariant(baseInput({ rows: 16, columns: 16, bitsAllocated: 8 }), TS.RLELossless);
    await expectCode(decodeDicom(await modifyDicom(rle, ['(0028,0100)=16', '(0028,0101)=16', '(0028,0102)=15'])), 'DIMENSION_MISMATCH', /segments/);
  });

  it('JPEG colour stream in a file that says MONOCHROME2', async () => {
    const rgb = makeTestPixels({ rows: 16, columns: 16, bitsAllocated: 8, samplesPerPixel: 3 }) as Uint8Array;
    const jpeg = await sharp(rgb, { raw: { width: 16, height: 16, channels: 3 } }).jpeg().toBuffer();
    await expectCode(
      decodeDicom(writeDicom({ rows: 16, columns: 16, bitsAllocated: 8, sopInstanceUid: newUid(), transferSyntaxUid: TS.JPEGBaseline, encapsulatedFrames: [jpeg] })),
      'DIMENSION_MISMATCH',
      /3 components but SamplesPerPixel is 1/,
    );
  });
});

describe('TOO_LARGE (from the header, before allocating)', () => {
  it('absurd Rows/Columns, absurd NumberOfFrames, and opts.maxPixels', async () => {
    const bytes = writeDicom(baseInput({ rows: 8, columns: 8, bitsAllocated: 8 }));
    // The pixel data is 64 bytes: reaching any later stage would give DIMENSION_MISMATCH instead.
    await expectCode(decodeDicom(await modifyDicom(bytes, ['(0028,0010)=65535', '(0028,0011)=65535'])), 'TOO_LARGE', /over the limit of 67108864/);
    await expectCode(decodeDicom(await modifyDicom(bytes, ['(0028,0008)=1000000000'])), 'TOO_LARGE');
    await expectCode(decodeDicom(bytes, { maxPixels: 63 }), 'TOO_LARGE', /64 samples, over the limit of 63/);
    assert.equal((await decodeDicom(bytes, { maxPixels: 64 })).pixels.length, 64);
  });

  it('a deflated dataset that inflates past the budget is stopped while inflating', async () => {
    const big = writeDicom({
      rows: 4096,
      columns: 4096,
      bitsAllocated: 16,
      pixels: new Uint16Array(4096 * 4096),
      sopInstanceUid: newUid(),
      transferSyntaxUid: TS.DeflatedExplicitVRLittleEndian,
    });
    assert.ok(big.length < 100_000, `a zero image deflates well (${big.length} bytes)`);
    await expectCode(decodeDicom(big, { maxPixels: 1024 }), 'TOO_LARGE', /inflates to more than/);
  });
});

describe('CODEC_FAILED', () => {
  const input = baseInput({ rows: 48, columns: 48, bitsAllocated: 16, bitsStored: 12 });

  /** Rewrites the first fragment of an encapsulated file through `mutate`, keeping the DICOM structure valid. */
  function withFragment(bytes: Uint8Array, ts: string, mutate: (f: Uint8Array) => Uint8Array): Uint8Array {
    const pd = pixelDataElement(bytes);
    const f = pd.fragments![0];
    return writeDicom({ ...input, pixels: undefined, transferSyntaxUid: ts, encapsulatedFrames: [mutate(bytes.slice(f.position, f.position + f.length))] });
  }

  /**
   * Damage no decoder can miss (entropy-coded data has no checksum, so plain bit flips may decode
   * to wrong pixels silently): an undefined marker (0xFF5A) in the middle of JPEG / JPEG-LS scan
   * data; for JPEG 2000 a tile-part length (Psot) far beyond the codestream.
   */
  function corrupt(f: Uint8Array): Uint8Array {
    const out = f.slice();
    if (out[0] === 0xff && out[1] === 0x4f) {
      const sot = out.findIndex((b, i) => b === 0xff && out[i + 1] === 0x90);
      new DataView(out.buffer).setUint32(sot + 6, 0x7ffffff0);
    } else {
      out[out.length >> 1] = 0xff;
      out[(out.length >> 1) + 1] = 0x5a;
    }
    return out;
  }

  it('a truncated codestream (end marker missing), for each encapsulated family', async () => {
    for (const ts of [TS.JPEGLossless, TS.JPEGLSLossless, TS.JPEG2000Lossless, TS.JPEGExtended]) {
      const bytes = await makeDicomVariant(input, ts);
      await expectCode(decodeDicom(withFragment(bytes, ts, (f) => f.subarray(0, f.length >> 1))), 'CODEC_FAILED', /end-of-image|truncated/);
    }
    const jpeg = await makeDicomVariant(baseInput({ rows: 48, columns: 48, bitsAllocated: 8 }), TS.JPEGBaseline);
    const pd = pixelDataElement(jpeg).fragments![0];
    const cut = jpeg.slice(pd.position, pd.position + (pd.length >> 1));
    await expectCode(decodeDicom(writeDicom({ rows: 48, columns: 48, bitsAllocated: 8, sopInstanceUid: newUid(), transferSyntaxUid: TS.JPEGBaseline, encapsulatedFrames: [cut] })), 'CODEC_FAILED');
  });

  it('corrupt entropy-coded data in JPEG Lossless, JPEG-LS and JPEG 2000 is reported by the wasm decoders', async () => {
    for (const ts of [TS.JPEGLossless, TS.JPEGLSLossless, TS.JPEG2000Lossless]) {
      const bytes = await makeDicomVariant(input, ts);
      await expectCode(decodeDicom(withFragment(bytes, ts, corrupt)), 'CODEC_FAILED', /decoder failed/);
    }
  });

  it('corrupt RLE segment offsets and short segments', async () => {
    const bytes = await makeDicomVariant(input, TS.RLELossless);
    await expectCode(
      decodeDicom(withFragment(bytes, TS.RLELossless, (f) => (new DataView(f.buffer, f.byteOffset).setUint32(8, 0x7fffffff, true), f))),
      'CODEC_FAILED',
      /segment 2 offset/,
    );
    await expectCode(decodeDicom(withFragment(bytes, TS.RLELossless, (f) => f.subarray(0, f.length - 40))), 'CODEC_FAILED', /decodes to|overruns/);
  });

  // Without the instance reset this hangs after ~30 failures (leaked wasm stack), hence the timeout.
  it('the shared wasm module recovers: 40 corrupt frames in a row, then a good one decodes', { timeout: 30_000 }, async () => {
    const good = await makeDicomVariant(input, TS.JPEGLossless);
    const bad = withFragment(good, TS.JPEGLossless, corrupt);
    for (let i = 0; i < 40; i++) await expectCode(decodeDicom(bad), 'CODEC_FAILED');
    const image = await decodeDicom(good);
    assert.deepEqual(Array.from(image.pixels), Array.from(input.pixels!));
  });
  it('concurrent good and corrupt frames: every good one decodes while failures reset the module', { timeout: 30_000 }, async () => {
    const good = await makeDicomVariant(input, TS.JPEGLSLossless);
    const bad = withFragment(good, TS.JPEGLSLossless, corrupt);
    const results = await Promise.allSettled(Array.from({ length: 24 }, (_, i) => decodeDicom(i % 3 === 0 ? bad : good)));
    results.forEach((r, i) => {
      if (i % 3 === 0) assert.ok(r.status === 'rejected' && isDicomError(r.reason) && r.reason.code === 'CODEC_FAILED', `call ${i}`);
      else assert.ok(r.status === 'fulfilled' && r.value.pixels[5] === input.pixels![5], `call ${i}: ${r.status === 'rejected' ? r.reason : ''}`);
    });
  });
});

describe('robustness property: damaged files only ever raise DicomError', () => {
  it('random truncations and byte flips over every codec family', async () => {
    const small = baseInput({ rows: 24, columns: 20, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 1, frames: 2 });
    const files: Uint8Array[] = [];
    for (const ts of [
      TS.ImplicitVRLittleEndian,
      TS.ExplicitVRBigEndian,
      TS.DeflatedExplicitVRLittleEndian,
      TS.RLELossless,
      TS.JPEGLosslessSV1,
      TS.JPEGLSLossless,
      TS.JPEG2000Lossless,
    ]) {
      files.push(await makeDicomVariant(small, ts));
    }
    files.push(await makeDicomVariant(baseInput({ rows: 24, columns: 20, bitsAllocated: 8 }), TS.JPEGBaseline));
    files.push(writeDicom({ ...small, preamble: false }));

    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: files.length - 1 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat({ max: 1 }),
        async (which, cutAt, flips, frame) => {
          const src = files[which];
          const damaged = src.slice(0, Math.max(0, Math.floor(cutAt * src.length)));
          for (const [at, value] of flips) if (damaged.length) damaged[Math.floor(at * (damaged.length - 1))] = value;
          try {
            const image = await decodeDicom(damaged, { frame });
            assert.equal(image.pixels.length, image.rows * image.columns);
          } catch (e) {
            if (!isDicomError(e)) throw new Error(`raw exception escaped: ${String((e as Error)?.stack ?? e)}`);
            assert.ok(!/[\r\n]/.test(e.message), e.message);
          }
        },
      ),
      { numRuns: 400, seed: 42 },
    );
  });
});
