/**
 * dcmtk as the independent side (issue 17) for the encodings our own writer and decoder otherwise only
 * check against each other: explicit VR big endian, deflated explicit VR little endian, native
 * YBR_FULL_422 and JPEG Baseline. Each file is written by one side and read by both:
 *   - big endian / deflate: our writer -> `dcmconv +te` (dcmtk's reading) -> raw samples, compared
 *     exactly with what we wrote and with our decoder's output; dcmtk's writer (`dcmconv +tb` / `+td`)
 *     -> our decoder, exactly;
 *   - YBR_FULL_422: our writer -> `dcm2pnm` (dcmtk's YBR -> RGB) -> luma within 1 of our decoder's;
 *   - JPEG Baseline: dcmtk's encoder (`dcmcjpeg`) and our writer (sharp frames) -> the SAME bytes
 *     decoded by `dcmdjpeg` (IJG) and by ours, per frame, within 1 (IDCT rounding differences).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { decodeDicom } from './decode.ts';
import { makeDicomVariant, makeTestPixels, withTempDir } from './testing/fixtures.ts';
import { TS } from './transfer-syntax.ts';
import { newUid, writeDicom, type DicomWriteInput } from './write.ts';

const run = promisify(execFile);

/** The Pixel Data bytes of `bytes` after dcmtk re-wrote the file with `tool args` (explicit VR LE, native). */
async function dcmtkRawPixels(bytes: Uint8Array, tool: string, args: string[]): Promise<Uint8Array> {
  return withTempDir(async (dir) => {
    await writeFile(join(dir, 'in.dcm'), bytes);
    await run(tool, [...args, join(dir, 'in.dcm'), join(dir, 'le.dcm')]);
    const { stdout } = await run('dcmdump', ['+W', dir, join(dir, 'le.dcm')]);
    const m = /\(7fe0,0010\) O[BW] =(\S+)/.exec(stdout);
    assert.ok(m, `dcmdump shows no Pixel Data:\n${stdout}`);
    return new Uint8Array(await readFile(m[1]!));
  });
}

/** dcmtk writes the file in another transfer syntax (`dcmconv +tb`, `+td`). */
async function dcmtkConvert(bytes: Uint8Array, args: string[]): Promise<Uint8Array> {
  return withTempDir(async (dir) => {
    await writeFile(join(dir, 'in.dcm'), bytes);
    await run('dcmconv', [...args, join(dir, 'in.dcm'), join(dir, 'out.dcm')]);
    return new Uint8Array(await readFile(join(dir, 'out.dcm')));
  });
}

function littleEndianSamples(raw: Uint8Array, bitsAllocated: 8 | 16, signed: boolean): number[] {
  if (bitsAllocated === 8) return Array.from(raw);
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Array.from({ length: raw.length / 2 }, (_, i) => (signed ? dv.getInt16(2 * i, true) : dv.getUint16(2 * i, true)));
}

/** Stored value -> what our decoder reports: BitsStored masking/sign extension, then the rescale. */
function modality(v: number, bitsStored: number, signed: boolean, slope: number, intercept: number): number {
  let s = v & (2 ** bitsStored - 1);
  if (signed && s >= 2 ** (bitsStored - 1)) s -= 2 ** bitsStored;
  return s * slope + intercept;
}

async function decodeAllFrames(bytes: Uint8Array, frames: number): Promise<number[]> {
  const out: number[] = [];
  for (let f = 0; f < frames; f++) out.push(...(await decodeDicom(bytes, { frame: f })).pixels);
  return out;
}

// Fixed UIDs: the header bytes (and so the deflate stream) are the same on every run.
const NATIVE_CASES: Array<{ name: string; input: DicomWriteInput }> = [
  {
    name: '16-bit signed, 12 bits stored, rescaled, 2 frames',
    input: {
      rows: 9,
      columns: 7,
      bitsAllocated: 16,
      bitsStored: 12,
      pixelRepresentation: 1,
      numberOfFrames: 2,
      pixels: makeTestPixels({ rows: 9, columns: 7, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 1, frames: 2, seed: 3 }),
      rescaleSlope: 2,
      rescaleIntercept: -1024,
      modality: 'CT',
      sopInstanceUid: '2.25.31415926535897932384626434',
    },
  },
  {
    name: '16-bit unsigned, 16 bits stored',
    input: { rows: 8, columns: 11, bitsAllocated: 16, pixels: makeTestPixels({ rows: 8, columns: 11, bitsAllocated: 16, seed: 5 }), sopInstanceUid: '2.25.31415926535897932384626435' },
  },
  {
    name: '8-bit, odd length (padded)',
    input: { rows: 5, columns: 7, bitsAllocated: 8, pixels: makeTestPixels({ rows: 5, columns: 7, bitsAllocated: 8, seed: 7 }), sopInstanceUid: '2.25.31415926535897932384626436' },
  },
];

for (const [syntax, ts, dcmtkFlag] of [
  ['explicit VR big endian', TS.ExplicitVRBigEndian, '+tb'],
  ['deflated explicit VR little endian', TS.DeflatedExplicitVRLittleEndian, '+td'],
] as const) {
  describe(`${syntax}: dcmtk on the other side`, () => {
    for (const { name, input } of NATIVE_CASES) {
      it(`${name}: dcmtk reads our file to the samples we wrote, our decoder agrees, and reads dcmtk's file (dcmconv ${dcmtkFlag}) the same`, async () => {
        const bits = input.bitsAllocated as 8 | 16;
        const signed = input.pixelRepresentation === 1;
        const frames = input.numberOfFrames ?? 1;
        const n = input.rows * input.columns * frames;
        const ours = writeDicom({ ...input, transferSyntaxUid: ts });
        const theirs = littleEndianSamples(await dcmtkRawPixels(ours, 'dcmconv', ['+te']), bits, signed).slice(0, n);
        assert.deepEqual(theirs, Array.from(input.pixels!), 'dcmtk reads the samples we wrote');
        const want = theirs.map((v) => modality(v, input.bitsStored ?? bits, signed, input.rescaleSlope ?? 1, input.rescaleIntercept ?? 0));
        assert.deepEqual(await decodeAllFrames(ours, frames), want, 'our decoder, our file');

        const dcmtkFile = await dcmtkConvert(writeDicom({ ...input, transferSyntaxUid: TS.ExplicitVRLittleEndian }), [dcmtkFlag]);
        const declared = new TextDecoder('latin1').decode(dcmtkFile.subarray(0, 400));
        assert.ok(declared.includes(ts), `dcmtk wrote ${ts}`);
        assert.deepEqual(await decodeAllFrames(dcmtkFile, frames), want, "our decoder, dcmtk's file");
      });
    }
  });
}

describe('native YBR_FULL_422: dcmtk on the other side', () => {
  it("dcmtk's YBR -> RGB of our file gives the luma our decoder reports (within 1), for every pixel", async () => {
    const rows = 6;
    const columns = 10;
    const n = rows * columns;
    // Full-resolution Y Cb Cr with moderate chroma (no RGB clipping), chroma of a pair differing.
    const ycc = new Uint8Array(3 * n);
    for (let i = 0; i < n; i++) {
      const x = i % columns;
      const y = Math.floor(i / columns);
      ycc[3 * i] = 30 + ((x * 37 + y * 23) % 190);
      ycc[3 * i + 1] = 128 + Math.round(20 * Math.sin(x + y));
      ycc[3 * i + 2] = 128 + Math.round(20 * Math.cos(2 * x - y));
    }
    const file = writeDicom({ rows, columns, bitsAllocated: 8, samplesPerPixel: 3, photometricInterpretation: 'YBR_FULL_422', pixels: ycc, sopInstanceUid: newUid(), transferSyntaxUid: TS.ExplicitVRLittleEndian });
    const ppm = await withTempDir(async (dir) => {
      await writeFile(join(dir, 'in.dcm'), file);
      await run('dcm2pnm', ['+op', join(dir, 'in.dcm'), join(dir, 'out.ppm')]);
      return new Uint8Array(await readFile(join(dir, 'out.ppm')));
    });
    const header = new TextDecoder().decode(ppm.subarray(0, 20)).split(/\s+/);
    assert.deepEqual(header.slice(0, 4), ['P6', String(columns), String(rows), '255']);
    const rgb = ppm.subarray(ppm.length - 3 * n);
    const ours = (await decodeDicom(file)).pixels;
    for (let i = 0; i < n; i++) {
      const luma = 0.299 * rgb[3 * i]! + 0.587 * rgb[3 * i + 1]! + 0.114 * rgb[3 * i + 2]!;
      assert.ok(Math.abs(ours[i]! - luma) <= 1, `pixel ${i}: ours ${ours[i]}, dcmtk's RGB gives luma ${luma.toFixed(2)}`);
      assert.equal(ours[i], ycc[3 * i], `pixel ${i}: our luma is the Y we wrote`);
    }
  });
});

describe('JPEG Baseline: the same bytes decoded by dcmdjpeg (IJG) and by ours', () => {
  const rows = 32;
  const columns = 40;
  const frames = 3;
  const n = rows * columns;
  const px = makeTestPixels({ rows, columns, bitsAllocated: 8, frames, seed: 11, noise: 0.1 }) as Uint8Array;

  async function compare(file: Uint8Array): Promise<void> {
    const theirs = Array.from(await dcmtkRawPixels(file, 'dcmdjpeg', ['+cn', '+te'])).slice(0, n * frames);
    const ours = await decodeAllFrames(file, frames);
    assert.equal(ours.length, theirs.length);
    let worst = 0;
    for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - theirs[i]!));
    assert.ok(worst <= 1, `largest difference ${worst}`);
    // Lossy but the same image, frame by frame (a frame-order mix-up differs by far more).
    for (let f = 0; f < frames; f++) {
      let err = 0;
      for (let i = f * n; i < (f + 1) * n; i++) err = Math.max(err, Math.abs(ours[i]! - px[i]!));
      assert.ok(err <= 40, `frame ${f}: largest error against the original ${err}`);
    }
  }

  it("dcmtk's encoder (dcmcjpeg +eb), 3 frames", async () => {
    const file = await makeDicomVariant({ rows, columns, bitsAllocated: 8, numberOfFrames: frames, pixels: px, sopInstanceUid: newUid() }, TS.JPEGBaseline);
    assert.ok(new TextDecoder('latin1').decode(file.subarray(0, 400)).includes(TS.JPEGBaseline));
    await compare(file);
  });

  it('our writer with sharp (libjpeg-turbo) frames, 3 frames', async () => {
    const encapsulatedFrames = await Promise.all(
      Array.from({ length: frames }, (_, f) => sharp(px.subarray(f * n, (f + 1) * n), { raw: { width: columns, height: rows, channels: 1 } }).toColourspace('b-w').jpeg({ quality: 85 }).toBuffer()),
    );
    const file = writeDicom({ rows, columns, bitsAllocated: 8, numberOfFrames: frames, sopInstanceUid: newUid(), transferSyntaxUid: TS.JPEGBaseline, encapsulatedFrames });
    await compare(file);
  });
});

describe('deflated files written by dcmtk, whatever their header bytes', () => {
  // dicom-parser reads one whole element past the meta group before checking its group; in a deflated
  // file that element is compressed bytes, which for some headers (a 20-character SOP Instance UID
  // here, found by this oracle) looked like a sequence and failed the read. UIDs of every length 10..44.
  it('decodes to the samples written, for SOP Instance UIDs of 10 to 44 characters', async () => {
    const base = { rows: 9, columns: 7, bitsAllocated: 16 as const, bitsStored: 12, pixelRepresentation: 1 as const, numberOfFrames: 2, rescaleSlope: 2, rescaleIntercept: -1024, modality: 'CT' };
    const pixels = makeTestPixels({ rows: 9, columns: 7, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 1, frames: 2, seed: 3 });
    const digits = '123456789012345678901234567890123456789012345';
    for (let len = 10; len <= 44; len++) {
      const uid = `2.25.${digits.slice(0, len - 5)}`.replace(/\.0/g, '.1');
      const native = writeDicom({ ...base, pixels, sopInstanceUid: uid, transferSyntaxUid: TS.ExplicitVRLittleEndian } as DicomWriteInput);
      const deflated = await dcmtkConvert(native, ['+td']);
      assert.deepEqual(await decodeAllFrames(deflated, 2), await decodeAllFrames(native, 2), `SOP Instance UID of ${uid.length} characters`);
    }
  });
});
