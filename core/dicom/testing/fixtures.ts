/**
 * Test fixtures: a DICOM in any transfer syntax from one call, built at test time with our writer
 * plus the reference encoders (dcmtk: dcmcjpeg, dcmcjpls, dcmcrle; OpenJPEG: opj_compress), and
 * reference decodes (dcmdjpeg, dcmdjpls, opj_decompress) to compare lossy results against.
 *
 * Needs dcmtk and libopenjp2-tools on PATH (scripts/test-deps.sh installs them).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TS } from '../transfer-syntax.ts';
import { newUid, writeDicom, type DicomWriteInput } from '../write.ts';

const run = promisify(execFile);

const NATIVE = new Set<string>([TS.ImplicitVRLittleEndian, TS.ExplicitVRLittleEndian, TS.ExplicitVRBigEndian, TS.DeflatedExplicitVRLittleEndian]);

/** dcmtk command lines per syntax. Lossy JPEG uses +sr +rm so dcmtk keeps modality values (it writes a Rescale instead of stretching pixels). */
const DCMTK: Record<string, [string, string[]]> = {
  [TS.RLELossless]: ['dcmcrle', []],
  [TS.JPEGBaseline]: ['dcmcjpeg', ['+eb', '+sr', '+rm']],
  [TS.JPEGExtended]: ['dcmcjpeg', ['+ee', '+sr', '+rm']],
  [TS.JPEGLossless]: ['dcmcjpeg', ['+el']],
  [TS.JPEGLosslessSV1]: ['dcmcjpeg', ['+e1']],
  [TS.JPEGLSLossless]: ['dcmcjpls', ['+el']],
  [TS.JPEGLSNearLossless]: ['dcmcjpls', ['+en']],
};

/** Runs `fn` with a fresh temporary directory that is removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'dicom-fixture-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function tool(cmd: string, args: string[]): Promise<void> {
  try {
    await run(cmd, args, { maxBuffer: 16 * 1024 * 1024 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(err.stderr || err.message).trim()}`);
  }
}

function framesOf(input: DicomWriteInput): { samples: Uint8Array | Uint16Array | Int16Array | Uint32Array; perFrame: number; frames: number } {
  if (!input.pixels) throw new Error('makeDicomVariant: pixels are required to encode');
  const frames = input.numberOfFrames ?? 1;
  return { samples: input.pixels, perFrame: input.pixels.length / frames, frames };
}

/** One frame as opj_compress raw input: component planes one after another, little endian. */
function opjRaw(input: DicomWriteInput, frame: number): Uint8Array {
  const { samples, perFrame } = framesOf(input);
  const spp = input.samplesPerPixel ?? 1;
  const px = samples.subarray(frame * perFrame, (frame + 1) * perFrame);
  const n = perFrame / spp;
  const planar = spp === 1 || input.planarConfiguration === 1;
  const bytes = input.bitsAllocated / 8;
  const out = new Uint8Array(perFrame * bytes);
  const dv = new DataView(out.buffer);
  for (let c = 0; c < spp; c++) {
    for (let i = 0; i < n; i++) {
      const v = planar ? px[c * n + i] : px[i * spp + c];
      const o = c * n + i;
      if (bytes === 1) out[o] = v;
      else dv.setUint16(2 * o, v & 0xffff, true);
    }
  }
  return out;
}

async function encodeJ2k(input: DicomWriteInput, ts: string, dir: string): Promise<Uint8Array> {
  const { frames } = framesOf(input);
  const spp = input.samplesPerPixel ?? 1;
  const bitsStored = input.bitsStored ?? input.bitsAllocated;
  const sign = input.pixelRepresentation === 1 ? 's' : 'u';
  const encoded: Uint8Array[] = [];
  for (let f = 0; f < frames; f++) {
    const raw = join(dir, `f${f}.rawl`);
    const j2k = join(dir, `f${f}.j2k`);
    await writeFile(raw, opjRaw(input, f));
    // Resolution levels: OpenJPEG's default 6 needs at least 32 pixels per side.
    const levels = Math.min(6, Math.floor(Math.log2(Math.min(input.rows, input.columns))) + 1);
    const args = ['-i', raw, '-o', j2k, '-F', `${input.columns},${input.rows},${spp},${bitsStored},${sign}`, '-n', String(levels)];
    if (spp === 3) args.push('-mct', '0'); // keep RGB: the DICOM header says RGB, not YBR_RCT/ICT
    if (ts === TS.JPEG2000) args.push('-r', '8');
    await tool('opj_compress', args);
    encoded.push(new Uint8Array(await readFile(j2k)));
  }
  return writeDicom({ ...input, transferSyntaxUid: ts, encapsulatedFrames: encoded, pixels: undefined });
}

/**
 * The image `input` describes, written in `transferSyntaxUid`: native syntaxes by writeDicom,
 * RLE / JPEG / JPEG-LS by dcmtk, JPEG 2000 by opj_compress (one codestream per frame).
 */
export async function makeDicomVariant(input: DicomWriteInput, transferSyntaxUid: string): Promise<Uint8Array> {
  if (NATIVE.has(transferSyntaxUid)) return writeDicom({ ...input, transferSyntaxUid });
  return withTempDir(async (dir) => {
    if (transferSyntaxUid === TS.JPEG2000Lossless || transferSyntaxUid === TS.JPEG2000) return encodeJ2k(input, transferSyntaxUid, dir);
    const recipe = DCMTK[transferSyntaxUid];
    if (!recipe) throw new Error(`makeDicomVariant: no encoder for transfer syntax ${transferSyntaxUid}`);
    const src = join(dir, 'in.dcm');
    const dst = join(dir, 'out.dcm');
    await writeFile(src, writeDicom({ ...input, transferSyntaxUid: TS.ExplicitVRLittleEndian, encapsulatedFrames: undefined }));
    // +un: keep the SOP Instance UID the caller chose even for lossy output.
    await tool(recipe[0], [...recipe[1], '+un', src, dst]);
    return new Uint8Array(await readFile(dst));
  });
}

/** The reference decoder's output for an encapsulated file, re-written as explicit VR little endian. */
export async function referenceDecode(bytes: Uint8Array, transferSyntaxUid: string): Promise<Uint8Array> {
  return withTempDir(async (dir) => {
    const src = join(dir, 'in.dcm');
    const dst = join(dir, 'out.dcm');
    await writeFile(src, bytes);
    const cmd =
      transferSyntaxUid === TS.RLELossless
        ? 'dcmdrle'
        : transferSyntaxUid === TS.JPEGLSLossless || transferSyntaxUid === TS.JPEGLSNearLossless
          ? 'dcmdjpls'
          : transferSyntaxUid === TS.JPEG2000 || transferSyntaxUid === TS.JPEG2000Lossless
            ? undefined
            : 'dcmdjpeg';
    if (!cmd) throw new Error('referenceDecode: use referenceDecodeJ2k for JPEG 2000');
    // +cn: never convert colour, so the reference keeps the header's photometric interpretation.
    await tool(cmd, [...(cmd === 'dcmdjpeg' ? ['+cn'] : []), '+te', src, dst]);
    return new Uint8Array(await readFile(dst));
  });
}

/** opj_decompress of one J2K codestream -> raw little-endian samples (component planes). */
export async function referenceDecodeJ2k(codestream: Uint8Array, signed: boolean, bitsStored: number): Promise<Int32Array> {
  return withTempDir(async (dir) => {
    const src = join(dir, 'in.j2k');
    const dst = join(dir, 'out.pgx');
    await writeFile(src, codestream);
    await tool('opj_decompress', ['-i', src, '-o', dst]);
    // PGX: "PG ML + <bits> <w> <h>\n" then big-endian samples (ML = MSB first).
    const pgx = new Uint8Array(await readFile(join(dir, 'out_0.pgx')).catch(() => readFile(dst)));
    const nl = pgx.indexOf(0x0a);
    const [, , sign, bits, w, h] = new TextDecoder().decode(pgx.subarray(0, nl)).trim().split(/\s+/);
    const width = Number(w);
    const height = Number(h);
    const depth = Number(bits);
    const bytes = depth > 8 ? 2 : 1;
    const out = new Int32Array(width * height);
    const dv = new DataView(pgx.buffer, pgx.byteOffset + nl + 1);
    for (let i = 0; i < out.length; i++) {
      let v = bytes === 2 ? dv.getUint16(2 * i) : dv.getUint8(i);
      if ((sign === '-' || signed) && v >= 2 ** (Math.max(depth, bitsStored) - 1)) v -= 2 ** (bytes * 8);
      out[i] = v;
    }
    return out;
  });
}

/** dcmodify -i (insert or modify) for each "(gggg,eeee)=value" pair: for headers our writer deliberately cannot produce. */
export async function modifyDicom(bytes: Uint8Array, assignments: string[]): Promise<Uint8Array> {
  return withTempDir(async (dir) => {
    const file = join(dir, 'x.dcm');
    await writeFile(file, bytes);
    await tool('dcmodify', ['-nb', '-ie', ...assignments.flatMap((a) => ['-i', a]), file]);
    return new Uint8Array(await readFile(file));
  });
}

export interface TestImageSpec {
  rows: number;
  columns: number;
  bitsAllocated: 8 | 16;
  bitsStored?: number;
  pixelRepresentation?: 0 | 1;
  samplesPerPixel?: 1 | 3;
  frames?: number;
  /** Seed for the deterministic texture. */
  seed?: number;
  /** Amplitude of the per-pixel noise as a fraction of the range (default 0.02): lossy codecs suffer from noise. */
  noise?: number;
}

/**
 * Deterministic test content spanning the stored range: smooth waves plus a little noise, a
 * different phase per frame and per sample, and the range's extreme values at two corners (so
 * sign extension and masking are exercised at their edges).
 */
export function makeTestPixels(spec: TestImageSpec): Uint8Array | Uint16Array | Int16Array {
  const bits = spec.bitsStored ?? spec.bitsAllocated;
  const signed = spec.pixelRepresentation === 1;
  const lo = signed ? -(2 ** (bits - 1)) : 0;
  const hi = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  const spp = spec.samplesPerPixel ?? 1;
  const frames = spec.frames ?? 1;
  const n = spec.rows * spec.columns;
  const total = n * spp * frames;
  const out = spec.bitsAllocated === 8 ? new Uint8Array(total) : signed ? new Int16Array(total) : new Uint16Array(total);
  let s = (spec.seed ?? 1) >>> 0 || 1;
  const noise = spec.noise ?? 0.02;
  for (let f = 0; f < frames; f++) {
    for (let c = 0; c < spp; c++) {
      for (let i = 0; i < n; i++) {
        const y = Math.floor(i / spec.columns);
        const x = i % spec.columns;
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        const t = 0.5 + 0.4 * Math.sin((x + 7 * f + 11 * c) / 9) * Math.cos((y - 5 * f) / 13) + noise * (s / 2 ** 32 - 0.5);
        let v = Math.round(lo + Math.min(1, Math.max(0, t)) * (hi - lo));
        if (i === 0) v = lo;
        if (i === n - 1) v = hi;
        // interleaved layout (planarConfiguration 0)
        out[(f * n + i) * spp + c] = v;
      }
    }
  }
  return out;
}

/** Interleaved RGB -> planar (all R, all G, all B) per frame. */
export function toPlanar(px: Uint8Array, pixelsPerFrame: number, frames = 1): Uint8Array {
  const out = new Uint8Array(px.length);
  for (let f = 0; f < frames; f++) {
    const base = f * pixelsPerFrame * 3;
    for (let i = 0; i < pixelsPerFrame; i++) {
      for (let c = 0; c < 3; c++) out[base + c * pixelsPerFrame + i] = px[base + 3 * i + c];
    }
  }
  return out;
}

/** A minimal valid DicomWriteInput for quick tests. */
export function baseInput(spec: TestImageSpec, extra: Partial<DicomWriteInput> = {}): DicomWriteInput {
  return {
    rows: spec.rows,
    columns: spec.columns,
    bitsAllocated: spec.bitsAllocated,
    bitsStored: spec.bitsStored,
    pixelRepresentation: spec.pixelRepresentation,
    samplesPerPixel: spec.samplesPerPixel,
    numberOfFrames: spec.frames,
    pixels: makeTestPixels(spec),
    sopInstanceUid: newUid(),
    ...extra,
  };
}

/**
 * A file whose encapsulated Pixel Data is exactly the given Basic Offset Table entries and fragments
 * (PS3.5 A.4), for crafted structures the writer never produces (tables pointing anywhere, empty
 * fragments, several fragments per frame). `header` describes the image; its encapsulatedFrames are ignored.
 */
export function withEncapsulatedPixelData(header: DicomWriteInput, transferSyntaxUid: string, bot: readonly number[], fragments: readonly Uint8Array[]): Uint8Array {
  const placeholder = new Uint8Array(2);
  const file = writeDicom({ ...header, pixels: undefined, transferSyntaxUid, encapsulatedFrames: [placeholder] });
  // writeDicom puts Pixel Data last: BOT item (8 + 4) + one item (8 + 2) + sequence delimiter (8).
  const prefix = file.subarray(0, file.length - 30);
  let size = 8 + 4 * bot.length + 8;
  for (const f of fragments) size += 8 + f.length + (f.length & 1);
  const out = new Uint8Array(prefix.length + size);
  out.set(prefix);
  const dv = new DataView(out.buffer);
  let p = prefix.length;
  const item = (tag: number, len: number) => {
    dv.setUint16(p, 0xfffe, true);
    dv.setUint16(p + 2, tag, true);
    dv.setUint32(p + 4, len, true);
    p += 8;
  };
  item(0xe000, 4 * bot.length);
  for (const o of bot) {
    dv.setUint32(p, o, true);
    p += 4;
  }
  for (const f of fragments) {
    item(0xe000, f.length + (f.length & 1));
    out.set(f, p);
    p += f.length + (f.length & 1);
  }
  item(0xe0dd, 0);
  return out;
}
