/**
 * Seeded DICOM structure mutations for the chaos suite: valid variants (core/dicom/testing/fixtures.ts:
 * native syntaxes, RLE, JPEG, JPEG-LS, JPEG 2000 through the reference encoders) bent one way at a time:
 * truncation, bit flips, lying element lengths, deeply nested sequences, Basic Offset Tables pointing
 * anywhere, fragment counts, codec headers.
 */
import { TS } from '../../core/dicom/transfer-syntax.ts';
import { baseInput, makeDicomVariant, withEncapsulatedPixelData } from '../../core/dicom/testing/fixtures.ts';
import type { DicomWriteInput } from '../../core/dicom/write.ts';
import type { Rng } from '../../core/rng.ts';

export interface Variant {
  name: string;
  bytes: Uint8Array;
  header: DicomWriteInput;
  ts: string;
}

/** The valid starting points; a syntax whose encoder is missing is skipped (and named). */
export async function makeVariants(): Promise<{ variants: Variant[]; skipped: string[] }> {
  const header = baseInput({ rows: 64, columns: 48, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, samplesPerPixel: 1, frames: 1 }, {
    photometricInterpretation: 'MONOCHROME2',
  });
  const header8 = baseInput({ rows: 64, columns: 48, bitsAllocated: 8, bitsStored: 8, pixelRepresentation: 0, samplesPerPixel: 1, frames: 2 }, {
    photometricInterpretation: 'MONOCHROME2',
  });
  const wanted: Array<[string, DicomWriteInput, string]> = [
    ['explicit-le', header, TS.ExplicitVRLittleEndian],
    ['implicit-le', header, TS.ImplicitVRLittleEndian],
    ['explicit-be', header, TS.ExplicitVRBigEndian],
    ['deflated', header, TS.DeflatedExplicitVRLittleEndian],
    ['rle', header, TS.RLELossless],
    ['jpeg-lossless', header, TS.JPEGLossless],
    ['jpeg-baseline-2f', header8, TS.JPEGBaseline],
    ['jpeg-ls', header, TS.JPEGLSLossless],
    ['j2k', header, TS.JPEG2000Lossless],
  ];
  const variants: Variant[] = [];
  const skipped: string[] = [];
  for (const [name, h, ts] of wanted) {
    try {
      variants.push({ name, bytes: await makeDicomVariant(h, ts), header: h, ts });
    } catch (e) {
      skipped.push(`${name}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return { variants, skipped };
}

/** Little-endian explicit-VR element positions (tag group/element, VR, length offset) found by a loose scan. */
function lengthFields(b: Uint8Array): number[] {
  const out: number[] = [];
  const long = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN', 'OD', 'OL', 'UC', 'UR', 'OV']);
  for (let p = 132; p + 8 <= b.length; p += 2) {
    const vr = String.fromCharCode(b[p + 4]!, b[p + 5]!);
    if (!/^[A-Z]{2}$/.test(vr)) continue;
    out.push(long.has(vr) ? p + 8 : p + 6);
    if (out.length > 200) break;
  }
  return out;
}

/** An SQ (0008,1140) nested `depth` deep with undefined lengths, inserted right after the meta header. */
function nestedSequences(b: Uint8Array, depth: number): Uint8Array {
  const metaEnd = findDatasetStart(b);
  const parts: number[] = [];
  const u16 = (v: number) => parts.push(v & 0xff, v >> 8);
  const u32 = (v: number) => parts.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
  for (let i = 0; i < depth; i++) {
    u16(0x0008), u16(0x1140), parts.push(0x53, 0x51, 0, 0), u32(0xffffffff); // SQ, undefined length
    u16(0xfffe), u16(0xe000), u32(0xffffffff); // item, undefined length
  }
  for (let i = 0; i < depth; i++) {
    u16(0xfffe), u16(0xe00d), u32(0); // item delimiter
    u16(0xfffe), u16(0xe0dd), u32(0); // sequence delimiter
  }
  const out = new Uint8Array(b.length + parts.length);
  out.set(b.subarray(0, metaEnd));
  out.set(parts, metaEnd);
  out.set(b.subarray(metaEnd), metaEnd + parts.length);
  return out;
}

/** Offset just past the group 0002 meta header (its group length), or 132. */
function findDatasetStart(b: Uint8Array): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length >= 144 && dv.getUint16(132, true) === 0x0002 && dv.getUint16(134, true) === 0x0000) return 144 + dv.getUint32(140, true);
  return 132;
}

export const MUTATIONS = ['truncate', 'bitflip', 'lying-length', 'nested-sequences', 'offset-table', 'fragment-count', 'codec-header', 'preamble-garbage', 'intact'] as const;
export type Mutation = (typeof MUTATIONS)[number];

/** One mutated input: which variant, which mutation, the bytes. */
export function mutate(rng: Rng, variants: Variant[]): { label: string; bytes: Uint8Array } {
  const v = variants[rng.int(variants.length)]!;
  const m = MUTATIONS[rng.int(MUTATIONS.length)]!;
  const b = new Uint8Array(v.bytes);
  const dv = new DataView(b.buffer);
  const label = `${v.name}/${m}`;
  switch (m) {
    case 'truncate':
      return { label, bytes: b.subarray(0, rng.int(b.length)) };
    case 'bitflip': {
      const n = 1 + rng.int(16);
      for (let i = 0; i < n; i++) {
        const p = 128 + rng.int(b.length - 128);
        b[p]! ^= 1 << rng.int(8);
      }
      return { label, bytes: b };
    }
    case 'lying-length': {
      const fields = lengthFields(b);
      if (fields.length === 0) return { label, bytes: b };
      const p = fields[rng.int(fields.length)]!;
      const choices = [0, 1, 0xffff, 0xfffffffe, 0xffffffff, b.length, b.length * 4, rng.int(1 << 30)];
      const val = choices[rng.int(choices.length)]!;
      if (p + 4 <= b.length) dv.setUint32(p, val >>> 0, true);
      return { label, bytes: b };
    }
    case 'nested-sequences':
      return { label, bytes: nestedSequences(b, [1, 8, 64, 512, 4096][rng.int(5)]!) };
    case 'offset-table': {
      const frames = v.header.numberOfFrames ?? 1;
      const frag = new Uint8Array(64 + rng.int(512)).map(() => rng.int(256));
      const bot = Array.from({ length: [0, 1, frames, 1000][rng.int(4)]! }, () => [0, 8, 0xffffffff, rng.int(1 << 20)][rng.int(4)]!);
      return { label, bytes: withEncapsulatedPixelData(v.header, rng.chance(0.5) ? TS.JPEGBaseline : TS.RLELossless, bot, [frag, frag]) };
    }
    case 'fragment-count': {
      const n = [0, 1, 2, 100, 5000, 20000][rng.int(6)]!;
      const frags = Array.from({ length: n }, () => new Uint8Array(rng.int(3) * 2));
      return { label, bytes: withEncapsulatedPixelData(v.header, [TS.JPEGBaseline, TS.RLELossless, TS.JPEG2000Lossless][rng.int(3)]!, rng.chance(0.5) ? [] : [0], frags) };
    }
    case 'codec-header': {
      // Bend bytes near the start of the encapsulated stream (SOF/SIZ/RLE header: sizes, counts, offsets).
      const at = findLast(b, [0xfe, 0xff, 0x00, 0xe0]);
      const start = at >= 0 ? at + 8 : Math.max(132, b.length - 256);
      const n = 1 + rng.int(8);
      for (let i = 0; i < n; i++) {
        const p = Math.min(b.length - 1, start + rng.int(96));
        b[p] = [0x00, 0xff, 0x7f, 0x80, rng.int(256)][rng.int(5)]!;
      }
      return { label, bytes: b };
    }
    case 'preamble-garbage':
      for (let i = 0; i < 128; i++) b[i] = rng.int(256);
      return { label, bytes: b };
    case 'intact':
      return { label, bytes: b };
  }
}

function findLast(b: Uint8Array, pat: number[]): number {
  outer: for (let p = b.length - pat.length; p >= 132; p--) {
    for (let i = 0; i < pat.length; i++) if (b[p + i] !== pat[i]) continue outer;
    // The first item (offset table) precedes the fragments: prefer the second-to-last item start.
    return p;
  }
  return -1;
}
