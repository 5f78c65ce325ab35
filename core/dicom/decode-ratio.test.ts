/**
 * The decompression-ratio guard (issue 15, defect 4): a tiny compressed frame declaring a huge image
 * is refused before any codec runs; real compressed images (and small blank ones) still decode.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import dicomParser from 'dicom-parser';
import { COMPRESSION_RATIO_MIN_SAMPLES, decodeDicom, DEFAULT_MAX_COMPRESSION_RATIO } from './decode.ts';
import { isDicomError } from './errors.ts';
import { TS } from './transfer-syntax.ts';
import { makeDicomVariant } from './testing/fixtures.ts';
import { newUid, writeDicom } from './write.ts';

async function expectTooLarge(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isDicomError(e), `expected a DicomError, got ${String(e)}`);
    assert.equal(e.code, 'TOO_LARGE', e.message);
    assert.match(e.message, message);
    assert.ok(!/[\r\n]/.test(e.message));
    return true;
  });
}

function firstFragment(bytes: Uint8Array): Uint8Array {
  const f = dicomParser.parseDicom(bytes).elements.x7fe00010.fragments![0];
  return bytes.slice(f.position, f.position + f.length);
}

/** A square 8-bit image that is black except for a soft disk of radius `r` (fraction of the side) with noise. */
function mostlyBlack(size: number, bits: 8 | 16, r: number): Uint8Array | Uint16Array {
  const px = bits === 8 ? new Uint8Array(size * size) : new Uint16Array(size * size);
  const top = bits === 8 ? 200 : 3000;
  let s = 5;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const d = Math.hypot(x - size / 2, y - size / 2) / size;
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      if (d < r) px[y * size + x] = Math.round(top * (1 - d) + ((s >>> 24) % 8));
    }
  }
  return px;
}

describe('decompression-ratio guard (issue 15, defect 4)', () => {
  it('the red team file: a ~600-byte JPEG 2000 frame declaring 8192x8192 is refused before decoding', async () => {
    // A real (blank) 16x16 codestream whose SIZ marker is rewritten to 8192x8192, in a header that agrees.
    const small = firstFragment(await makeDicomVariant({ rows: 16, columns: 16, bitsAllocated: 8, pixels: new Uint8Array(256), sopInstanceUid: newUid() }, TS.JPEG2000Lossless));
    const dv = new DataView(small.buffer, small.byteOffset, small.byteLength);
    assert.equal(dv.getUint16(2), 0xff51, 'SIZ follows SOC');
    for (const at of [8, 12, 24, 28]) dv.setUint32(at, 8192); // Xsiz, Ysiz, XTsiz, YTsiz
    const bomb = writeDicom({ rows: 8192, columns: 8192, bitsAllocated: 8, sopInstanceUid: newUid(), transferSyntaxUid: TS.JPEG2000Lossless, encapsulatedFrames: [small] });
    assert.ok(bomb.length < 1000, `${bomb.length} bytes`);
    const t0 = performance.now();
    await expectTooLarge(decodeDicom(bomb), /declares 8192x8192x1 samples \(67108864 bytes\), a \d+:1 ratio over the limit of 5000:1/);
    assert.ok(performance.now() - t0 < 1000, 'refused from the header, not after decoding');
  });

  it('genuine blank 2048x2048 JPEG 2000 and JPEG-LS frames (a few hundred bytes each) are refused; the option lifts the guard', { timeout: 60_000 }, async () => {
    const blank = { rows: 2048, columns: 2048, bitsAllocated: 8 as const, pixels: new Uint8Array(2048 * 2048), sopInstanceUid: newUid() };
    for (const ts of [TS.JPEG2000Lossless, TS.JPEGLSLossless]) {
      const bytes = await makeDicomVariant(blank, ts);
      assert.ok(bytes.length < 2000, `${ts}: ${bytes.length} bytes`);
      await expectTooLarge(decodeDicom(bytes), /ratio over the limit of 5000:1/);
      const image = await decodeDicom(bytes, { maxCompressionRatio: Infinity });
      assert.equal(image.max, 0);
    }
  });

  it('a blank frame up to 1 Mi samples is below the guard and decodes', async () => {
    assert.equal(COMPRESSION_RATIO_MIN_SAMPLES, 1024 * 1024);
    const bytes = await makeDicomVariant({ rows: 1024, columns: 1024, bitsAllocated: 8, pixels: new Uint8Array(1024 * 1024), sopInstanceUid: newUid() }, TS.JPEG2000Lossless);
    assert.ok(bytes.length < 1000);
    assert.equal((await decodeDicom(bytes)).max, 0);
  });

  it('real content above the floor decodes in every compressed family, inside the limit', { timeout: 120_000 }, async () => {
    // Mostly black: exact zeros except a disk holding 0.8 % of the area, the most compressible
    // real-looking image measured (real detectors add noise to the background, which compresses far less).
    const size = 1100;
    let worst = 0;
    for (const bits of [8, 16] as const) {
      const pixels = mostlyBlack(size, bits, 0.05);
      const input = { rows: size, columns: size, bitsAllocated: bits, bitsStored: bits === 8 ? 8 : 12, pixels, sopInstanceUid: newUid() };
      const lossless: string[] = [TS.RLELossless, TS.JPEGLosslessSV1, TS.JPEGLSLossless, TS.JPEG2000Lossless];
      const syntaxes = [...lossless, TS.JPEGLSNearLossless, TS.JPEG2000, ...(bits === 8 ? [TS.JPEGBaseline] : [])];
      for (const ts of syntaxes) {
        const bytes = await makeDicomVariant(input, ts);
        const ratio = (size * size * (bits / 8)) / firstFragment(bytes).length;
        worst = Math.max(worst, ratio);
        const image = await decodeDicom(bytes);
        assert.equal(image.rows, size);
        const centre = size * (size / 2) + size / 2;
        if (lossless.includes(ts)) assert.equal(image.pixels[centre], pixels[centre], ts);
      }
    }
    // Measured 702:1 (12-bit JPEG-LS near-lossless); the default leaves a margin of several times that.
    assert.ok(worst * 3 < DEFAULT_MAX_COMPRESSION_RATIO, `worst ratio ${worst.toFixed(0)}:1`);
  });

  it('rejects a non-positive maxCompressionRatio', async () => {
    await assert.rejects(decodeDicom(new Uint8Array(10), { maxCompressionRatio: 0 }), RangeError);
  });
});
