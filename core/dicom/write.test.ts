/** The Part 10 writer: dcmtk reads what it writes, in every native syntax and encapsulated; UIDs are valid. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { TS } from './transfer-syntax.ts';
import { makeTestPixels, withTempDir } from './testing/fixtures.ts';
import { newUid, writeDicom, type DicomWriteInput } from './write.ts';

const run = promisify(execFile);

async function dcmdump(bytes: Uint8Array, args: string[] = []): Promise<string> {
  return withTempDir(async (dir) => {
    const file = join(dir, 'x.dcm');
    await writeFile(file, bytes);
    const { stdout, stderr } = await run('dcmdump', [...args, file]);
    assert.equal(stderr.trim(), '', `dcmdump warnings: ${stderr}`);
    return stdout;
  });
}

const image: DicomWriteInput = {
  rows: 6,
  columns: 5,
  bitsAllocated: 16,
  bitsStored: 12,
  pixelRepresentation: 1,
  pixels: Int16Array.from({ length: 30 }, (_, i) => i * 100 - 1500),
  sopInstanceUid: '2.25.1234',
  studyInstanceUid: '2.25.5',
  seriesInstanceUid: '2.25.6',
  modality: 'CT',
  rescaleIntercept: -1024,
  rescaleSlope: 1,
  windowCenter: 40,
  windowWidth: 400.5,
  patientName: 'Doe^Jane',
  patientId: 'P1',
  bodyPartExamined: 'CHEST',
  viewPosition: 'PA',
};

describe('writeDicom', () => {
  it('dcmdump reads every native syntax without warnings, with the values given', async () => {
    for (const ts of [TS.ImplicitVRLittleEndian, TS.ExplicitVRLittleEndian, TS.ExplicitVRBigEndian, TS.DeflatedExplicitVRLittleEndian]) {
      const out = await dcmdump(writeDicom({ ...image, transferSyntaxUid: ts }), ['+L']);
      assert.match(out, /\(0028,0010\) US 6 /);
      assert.match(out, /\(0028,0011\) US 5 /);
      assert.match(out, /\(0028,0101\) US 12 /);
      assert.match(out, /\(0028,0103\) US 1 /);
      assert.match(out, /\(0028,1052\) DS \[-1024\]/);
      assert.match(out, /\(0028,1051\) DS \[400\.5\]/);
      assert.match(out, /\(0008,0060\) CS \[CT\]/);
      assert.match(out, /\(0010,0010\) PN \[Doe\^Jane\]/);
      assert.match(out, /\(0018,5101\) CS \[PA\]/);
      assert.match(out, /\(0020,000d\) UI \[2\.25\.5\]/);
      assert.match(out, new RegExp(`\\(0002,0010\\) UI =\\w+`));
      // Pixel values: the first is -1500 (0xfa24), in the file's byte order as dcmdump shows words.
      assert.match(out, /\(7fe0,0010\) OW fa24\\fa88/);
    }
  });

  it('writes the bare implicit dataset when preamble is false', async () => {
    const bytes = writeDicom({ ...image, preamble: false });
    assert.equal(bytes[0], 0x08); // (0008,0016) first, no preamble
    const out = await dcmdump(bytes, ['-f', '-ti']);
    assert.match(out, /\(0028,0010\) US 6 /);
    assert.throws(() => writeDicom({ ...image, preamble: false, transferSyntaxUid: TS.ExplicitVRLittleEndian }), /implicit VR little endian only/);
  });

  it('encapsulated frames get a basic offset table and dcmdjpeg decompresses them to the frames\' pixels, in order', async () => {
    const px = makeTestPixels({ rows: 16, columns: 24, bitsAllocated: 8, frames: 2 }) as Uint8Array;
    const frames = await Promise.all(
      [0, 1].map((f) => sharp(px.subarray(f * 384, (f + 1) * 384), { raw: { width: 24, height: 16, channels: 1 } }).toColourspace('b-w').jpeg().toBuffer()),
    );
    const bytes = writeDicom({ rows: 16, columns: 24, bitsAllocated: 8, numberOfFrames: 2, sopInstanceUid: newUid(), transferSyntaxUid: TS.JPEGBaseline, encapsulatedFrames: frames });
    const out = await dcmdump(bytes);
    assert.match(out, /\(fffe,e000\) pi 00\\00\\00\\00\\[0-9a-f]{2}\\[0-9a-f]{2}\\00\\00 +# +8, 1 Item/); // BOT: offsets 0 and the second frame's
    assert.match(out, /\(0028,0008\) IS \[2\]/);
    // dcmdjpeg's pixels (raw Pixel Data of its output via dcmdump +W), frame by frame, against
    // libjpeg-turbo's decode of the frames we put in: within 1 (IDCT rounding), in frame order.
    const theirs = await withTempDir(async (dir) => {
      await writeFile(join(dir, 'in.dcm'), bytes);
      await run('dcmdjpeg', ['+te', join(dir, 'in.dcm'), join(dir, 'out.dcm')]);
      const { stdout } = await run('dcmdump', ['+W', dir, join(dir, 'out.dcm')]);
      const m = /\(7fe0,0010\) O[BW] =(\S+)/.exec(stdout);
      assert.ok(m, stdout);
      return new Uint8Array(await readFile(m[1]!));
    });
    assert.ok(theirs.length >= 2 * 384);
    for (const [f, jpeg] of frames.entries()) {
      const want = await sharp(jpeg).toColourspace('b-w').raw().toBuffer();
      assert.equal(want.length, 384);
      for (let i = 0; i < 384; i++) assert.ok(Math.abs(theirs[f * 384 + i]! - want[i]!) <= 1, `frame ${f} pixel ${i}: dcmdjpeg ${theirs[f * 384 + i]}, libjpeg-turbo ${want[i]}`);
    }
  });

  it('omitPixelData writes an object with no image attributes and no Pixel Data', async () => {
    const out = await dcmdump(writeDicom({ ...image, omitPixelData: true }));
    assert.doesNotMatch(out, /\(7fe0,0010\)|\(0028,0010\)/);
    assert.match(out, /RTPlanStorage/);
  });

  it('rejects inconsistent input', () => {
    assert.throws(() => writeDicom({ ...image, rows: 7 }), /pixels has 30 samples/);
    assert.throws(() => writeDicom({ ...image, transferSyntaxUid: TS.JPEGBaseline }), /requires encapsulatedFrames/);
    assert.throws(() => writeDicom({ ...image, pixels: new Uint8Array(30) }), /needs a Uint16Array or Int16Array/);
    assert.throws(() => writeDicom({ ...image, sopInstanceUid: '1.02.3' }), /not a valid UID/);
    assert.throws(() => writeDicom({ ...image, samplesPerPixel: 3, photometricInterpretation: 'MONOCHROME2' }), /does not fit samplesPerPixel/);
    assert.throws(() => writeDicom({ ...image, patientName: 'Müller' }), /only ASCII/);
  });
});

describe('newUid', () => {
  it('is 2.25.<integer of a v4 UUID>, at most 64 characters, with no leading zeros', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const uid = newUid();
      assert.match(uid, /^2\.25\.(0|[1-9][0-9]*)$/);
      assert.ok(uid.length <= 64);
      const hex = BigInt(uid.slice(5)).toString(16).padStart(32, '0');
      assert.equal(hex[12], '4'); // version nibble
      assert.ok('89ab'.includes(hex[16])); // variant bits
      seen.add(uid);
    }
    assert.equal(seen.size, 200);
  });

  it('is reproducible from a seeded random source', () => {
    const rng = (seed: number) => () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    assert.equal(newUid(rng(7)), newUid(rng(7)));
    assert.notEqual(newUid(rng(7)), newUid(rng(8)));
  });
});
