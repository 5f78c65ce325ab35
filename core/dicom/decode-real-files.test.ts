/**
 * Real-world files that reference readers (dcmtk, pydicom) read and this decoder used to refuse
 * (issue 15, defect 11). Each fixture is made by dcmtk or crafted from a dcmtk-made file, and
 * dcmtk itself is the oracle that the file is readable.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import dicomParser from 'dicom-parser';
import sharp from 'sharp';
import { decodeDicom } from './decode.ts';
import { describeThrown } from './parse.ts';
import { TS } from './transfer-syntax.ts';
import { baseInput, makeDicomVariant, makeTestPixels, modifyDicom, referenceDecode, withEncapsulatedPixelData, withTempDir } from './testing/fixtures.ts';
import { newUid, writeDicom, type DicomWriteInput } from './write.ts';

const run = promisify(execFile);

function fragmentOf(bytes: Uint8Array): Uint8Array {
  const f = dicomParser.parseDicom(bytes).elements.x7fe00010.fragments![0];
  return bytes.slice(f.position, f.position + f.length);
}

/** The codestream without the writer's even-length padding. */
function unpadded(f: Uint8Array): Uint8Array {
  let end = f.length;
  while (end > 0 && f[end - 1] === 0) end--;
  return f.subarray(0, end);
}

function withTail(f: Uint8Array, tail: number[]): Uint8Array {
  const out = new Uint8Array(f.length + tail.length);
  out.set(f);
  out.set(tail, f.length);
  return out;
}

/** A colour JPEG Baseline file as img2dcm writes it from a JPEG (YBR_FULL_422, one fragment). */
async function img2dcmRgbJpeg(): Promise<Uint8Array> {
  const rgb = makeTestPixels({ rows: 48, columns: 64, bitsAllocated: 8, samplesPerPixel: 3 }) as Uint8Array;
  const jpeg = await sharp(rgb, { raw: { width: 64, height: 48, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
  return withTempDir(async (dir) => {
    await writeFile(join(dir, 'in.jpg'), jpeg);
    await run('img2dcm', [join(dir, 'in.jpg'), join(dir, 'out.dcm')]);
    return new Uint8Array(await readFile(join(dir, 'out.dcm')));
  });
}

/** dcmtk reads the file (and decompresses it when it is encapsulated): the "other readers read it" half. */
async function dcmtkReads(bytes: Uint8Array, ts: string): Promise<Uint8Array> {
  if (ts === TS.JPEG2000Lossless) {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'x.dcm'), bytes);
      await run('dcmdump', ['-q', join(dir, 'x.dcm')]);
    });
    return bytes;
  }
  return referenceDecode(bytes, ts);
}

function assertSame(a: Float32Array, b: Float32Array, label: string, tolerance = 0): void {
  assert.equal(a.length, b.length, `${label}: length`);
  for (let i = 0; i < a.length; i++) {
    if (Math.abs(a[i] - b[i]) > tolerance) assert.fail(`${label}: pixel ${i} is ${a[i]}, expected ${b[i]} (tolerance ${tolerance})`);
  }
}

describe('issue 15, defect 11: real files that reference readers read', () => {
  it('(a) codestreams followed by 0xFF padding after the end-of-image marker', async () => {
    const grey = baseInput({ rows: 32, columns: 40, bitsAllocated: 8 });
    const cases: Array<{ ts: string; file: Uint8Array; header: DicomWriteInput }> = [
      { ts: TS.JPEGBaseline, file: await img2dcmRgbJpeg(), header: { rows: 48, columns: 64, bitsAllocated: 8, samplesPerPixel: 3, photometricInterpretation: 'YBR_FULL_422', sopInstanceUid: newUid() } },
      { ts: TS.JPEGBaseline, file: await makeDicomVariant(grey, TS.JPEGBaseline), header: { ...grey, pixels: undefined } },
      { ts: TS.JPEGLosslessSV1, file: await makeDicomVariant(grey, TS.JPEGLosslessSV1), header: { ...grey, pixels: undefined } },
      { ts: TS.JPEGLSLossless, file: await makeDicomVariant(grey, TS.JPEGLSLossless), header: { ...grey, pixels: undefined } },
      { ts: TS.JPEG2000Lossless, file: await makeDicomVariant(grey, TS.JPEG2000Lossless), header: { ...grey, pixels: undefined } },
    ];
    for (const { ts, file, header } of cases) {
      const expected = await decodeDicom(file);
      const codestream = unpadded(fragmentOf(file));
      for (const tail of [[0xff], [0xff, 0xff], [0xff, 0xff, 0xff, 0xff, 0xff, 0x00]]) {
        const padded = withEncapsulatedPixelData(header, ts, [0], [withTail(codestream, tail)]);
        await dcmtkReads(padded, ts);
        const image = await decodeDicom(padded);
        assertSame(image.pixels, expected.pixels, `${ts} + ${tail.length} padding bytes`);
      }
    }
  });

  it('(b) native Pixel Data longer than rows x columns x frames: the leading bytes are used', async () => {
    const input = baseInput({ rows: 10, columns: 12, bitsAllocated: 16, bitsStored: 12 });
    const original = input.pixels!;
    for (const rows of [9, 5]) {
      // The same Pixel Data under a header that needs fewer rows: what follows is trailing padding.
      const bytes = await modifyDicom(writeDicom(input), [`(0028,0010)=${rows}`]);
      const image = await decodeDicom(bytes);
      assert.equal(image.rows, rows);
      assert.deepEqual(Array.from(image.pixels), Array.from(original.subarray(0, rows * 12)));
      // dcmtk reads it too (rewriting it keeps only what the header needs).
      await withTempDir(async (dir) => {
        await writeFile(join(dir, 'x.dcm'), bytes);
        await run('dcmconv', [join(dir, 'x.dcm'), join(dir, 'y.dcm')]);
      });
    }
    // 8-bit, two frames' worth of data under a one-frame header.
    const two = baseInput({ rows: 7, columns: 9, bitsAllocated: 8, frames: 2 });
    const one = await modifyDicom(writeDicom(two), ['(0028,0008)=1']);
    assert.deepEqual(Array.from((await decodeDicom(one)).pixels), Array.from(two.pixels!.subarray(0, 63)));
  });

  it('(c) RGB JPEG Baseline files dicom-parser reported a "buffer overrun" on: delimiter length 0xFFFFFFFF, OV Extended Offset Table', async () => {
    const file = await img2dcmRgbJpeg();
    const expected = await decodeDicom(file);
    // 1. The sequence delimiter after the fragments carries length 0xFFFFFFFF instead of 0 (dicomParser issue 266).
    const delimiter = file.slice();
    assert.deepEqual(Array.from(delimiter.subarray(-8, -4)), [0xfe, 0xff, 0xdd, 0xe0]);
    delimiter.fill(0xff, delimiter.length - 4);
    // 2. An Extended Offset Table (7FE0,0001) and its Lengths (7FE0,0002), VR OV: 12-byte headers (dicomParser issue 284).
    const pd = dicomParser.parseDicom(file).elements.x7fe00010;
    const headerAt = pd.dataOffset - 12;
    const ov = (element: number, value: number) => {
      const b = new Uint8Array(20);
      const dv = new DataView(b.buffer);
      b.set([0xe0, 0x7f, element, 0x00, 0x4f, 0x56, 0, 0]);
      dv.setUint32(8, 8, true);
      dv.setBigUint64(12, BigInt(value), true);
      return b;
    };
    const eot = new Uint8Array(file.length + 40);
    eot.set(file.subarray(0, headerAt));
    eot.set(ov(1, 0), headerAt);
    eot.set(ov(2, pd.fragments![0].length), headerAt + 20);
    eot.set(file.subarray(headerAt), headerAt + 40);
    for (const [name, bytes] of [['delimiter length', delimiter], ['OV extended offset table', eot]] as const) {
      const dump = await withTempDir(async (dir) => {
        await writeFile(join(dir, 'x.dcm'), bytes);
        return (await run('dcmdump', [join(dir, 'x.dcm')])).stdout;
      });
      assert.match(dump, /PixelData/, `${name}: dcmtk reads it`);
      await referenceDecode(bytes, TS.JPEGBaseline);
      assert.throws(() => dicomParser.parseDicom(bytes), (e: unknown) => /buffer overrun/.test(describeThrown(e)), `${name}: dicom-parser alone fails`);
      assertSame((await decodeDicom(bytes)).pixels, expected.pixels, name);
    }
    // A file that is really cut short still says so.
    await assert.rejects(decodeDicom(delimiter.subarray(0, pd.fragments![0].position + 100)), /TRUNCATED|cut short/);
  });

  it('(d) 32-bit RGB, native and RLE (dcmcrle, 12 segments): luma from the full 32-bit samples, same as dcmtk decodes', async () => {
    const rows = 6;
    const columns = 7;
    const n = rows * columns;
    const px = new Uint32Array(3 * n);
    for (let i = 0; i < 3 * n; i++) px[i] = Math.imul(i + 1, 2654435761) >>> 0;
    px.set([0, 0xffffffff, 0x80000000], 0);
    const input: DicomWriteInput = { rows, columns, bitsAllocated: 32, samplesPerPixel: 3, photometricInterpretation: 'RGB', pixels: px, sopInstanceUid: newUid() };
    const expected = new Float32Array(n);
    for (let i = 0; i < n; i++) expected[i] = Math.fround(0.299 * px[3 * i] + 0.587 * px[3 * i + 1] + 0.114 * px[3 * i + 2]);

    const native = writeDicom(input);
    const rle = await makeDicomVariant(input, TS.RLELossless);
    assert.equal(new DataView(fragmentOf(rle).buffer).getUint32(0, true), 12, 'dcmcrle wrote 12 segments');
    const back = await referenceDecode(rle, TS.RLELossless); // dcmtk's RLE decoder, re-written native
    for (const [name, bytes] of [['native', native], ['RLE', rle], ['dcmdrle of the RLE file', back]] as const) {
      const image = await decodeDicom(bytes);
      assert.equal(image.bitsAllocated, 32);
      assertSame(image.pixels, expected, name, 1e-3 * 2 ** 32 * 2 ** -24);
    }
  });
});
