/**
 * A small DICOM Part 10 writer for synthetic data and test fixtures. It writes exactly the
 * attributes an image needs (SOP common, a few series/study UIDs, the Image Pixel module,
 * VOI LUT / Modality LUT scalars) in any native transfer syntax, or encapsulated frames that
 * were compressed elsewhere (sharp, dcmtk, opj_compress).
 *
 * It is not a general DICOM toolkit: no sequences, no private tags, no character sets beyond ASCII.
 */
import { deflateRawSync } from 'node:zlib';
import { randomUUID } from 'node:crypto';
import { TS } from './transfer-syntax.ts';

export interface DicomWriteInput {
  rows: number;
  columns: number;
  /** Samples row-major; for samplesPerPixel 3 interleaved unless planarConfiguration 1. Ignored when encapsulatedFrames is given. */
  pixels?: Uint8Array | Uint16Array | Int16Array | Uint32Array;
  /** 32 (Uint32Array pixels) is for fixtures of the rare 32-bit objects (e.g. RGB via RLE). */
  bitsAllocated: 8 | 16 | 32;
  bitsStored?: number;
  highBit?: number;
  pixelRepresentation?: 0 | 1;
  photometricInterpretation?: 'MONOCHROME1' | 'MONOCHROME2' | 'RGB' | 'YBR_FULL' | 'YBR_FULL_422';
  samplesPerPixel?: 1 | 3;
  planarConfiguration?: 0 | 1;
  numberOfFrames?: number;
  rescaleSlope?: number;
  rescaleIntercept?: number;
  windowCenter?: number;
  windowWidth?: number;
  sopInstanceUid: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  sopClassUid?: string;
  modality?: string;
  patientName?: string;
  patientId?: string;
  bodyPartExamined?: string;
  viewPosition?: string;
  /** Default explicit VR LE. Native syntaxes: .1.2, .1.2.1, .1.2.2, .1.2.1.99. Any other UID requires encapsulatedFrames. */
  transferSyntaxUid?: string;
  /** Already-compressed frames (e.g. a JPEG baseline stream from sharp) to write encapsulated (with basic offset table). */
  encapsulatedFrames?: Uint8Array[];
  /** false: write the bare dataset with no preamble/meta (implicit VR LE), as some old archives hold. Default true. */
  preamble?: boolean;
  /** Omit Pixel Data entirely (to fabricate RT Plan/SR-like objects for tests). */
  omitPixelData?: boolean;
}

/** Secondary Capture Image Storage: the honest class for synthetic images. */
const SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7';
/** RT Plan Storage, the default class when no pixel data is written. */
const RT_PLAN = '1.2.840.10008.5.1.4.1.1.481.5';
/** Identifies this writer in the file meta (a fixed UUID-derived UID). */
export const IMPLEMENTATION_CLASS_UID = '2.25.270998146460335286591339219416934386377';
const IMPLEMENTATION_VERSION_NAME = 'UNETSEG_0_1';

/**
 * A UID of the form 2.25.<decimal of a 128-bit UUID> (PS3.5 B.2). With a random source (values in
 * [0, 1)) the result is reproducible, which the synthetic generator uses for deterministic datasets.
 */
export function newUid(seedOrRandom?: () => number): string {
  let hex: string;
  if (seedOrRandom) {
    const bytes = new Uint8Array(16);
    for (let i = 0; i < 16; i++) bytes[i] = Math.floor(seedOrRandom() * 256) & 0xff;
    // Mark as a version-4 (random) UUID so the value is a valid UUID, as B.2 asks.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  } else {
    hex = randomUUID().replace(/-/g, '');
  }
  return `2.25.${BigInt('0x' + hex).toString(10)}`;
}

type Vr = 'UI' | 'CS' | 'SH' | 'AE' | 'LO' | 'PN' | 'DS' | 'IS' | 'US' | 'UL' | 'OB' | 'OW';

interface Element {
  tag: number; // (group << 16) | element
  vr: Vr;
  /** Value bytes in the dataset's byte order, already padded to even length; undefined = encapsulated pixel data. */
  value: Uint8Array;
  undefinedLength?: boolean;
}

/** VRs whose explicit-VR header has 2 reserved bytes and a 32-bit length (PS3.5 7.1.2). */
const LONG_VRS = new Set<Vr>(['OB', 'OW']);

const NATIVE_SYNTAXES = new Set<string>([TS.ImplicitVRLittleEndian, TS.ExplicitVRLittleEndian, TS.ExplicitVRBigEndian, TS.DeflatedExplicitVRLittleEndian]);

function asciiPadded(s: string, pad: number): Uint8Array {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7e) throw new RangeError(`writeDicom: only ASCII values are supported, got ${JSON.stringify(s)}`);
  }
  const len = s.length + (s.length & 1);
  const out = new Uint8Array(len);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  if (len > s.length) out[len - 1] = pad;
  return out;
}

/** DS values are at most 16 characters (PS3.5 6.2). */
function formatDs(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`writeDicom: DS value must be finite, got ${n}`);
  let s = String(n);
  for (let p = 15; s.length > 16 && p > 0; p--) s = n.toPrecision(p).replace(/\.?0+(e|$)/, '$1');
  if (s.length > 16) throw new RangeError(`writeDicom: cannot format ${n} as DS`);
  return s;
}

function checkUid(name: string, uid: string): void {
  if (!/^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/.test(uid) || uid.length > 64) {
    throw new RangeError(`writeDicom: ${name} is not a valid UID: ${JSON.stringify(uid)}`);
  }
}

class ElementSet {
  readonly list: Element[] = [];
  constructor(private readonly littleEndian: boolean) {}
  private add(tag: number, vr: Vr, value: Uint8Array, undefinedLength = false): void {
    this.list.push({ tag, vr, value, undefinedLength });
  }
  str(tag: number, vr: Vr, value: string | undefined): void {
    if (value === undefined) return;
    this.add(tag, vr, asciiPadded(value, vr === 'UI' ? 0 : 0x20));
  }
  us(tag: number, value: number): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, value, this.littleEndian);
    this.add(tag, 'US', b);
  }
  ul(tag: number, value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value, this.littleEndian);
    this.add(tag, 'UL', b);
  }
  bytes(tag: number, vr: Vr, value: Uint8Array, undefinedLength = false): void {
    this.add(tag, vr, value, undefinedLength);
  }
}

/** Serialises elements (sorted by tag) in implicit or explicit VR with the given byte order. */
function encodeElements(elements: Element[], explicit: boolean, littleEndian: boolean): Uint8Array {
  const sorted = [...elements].sort((a, b) => a.tag - b.tag);
  let size = 0;
  for (const e of sorted) size += headerLength(e, explicit) + e.value.length;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  let p = 0;
  for (const e of sorted) {
    dv.setUint16(p, e.tag >>> 16, littleEndian);
    dv.setUint16(p + 2, e.tag & 0xffff, littleEndian);
    p += 4;
    const len = e.undefinedLength ? 0xffffffff : e.value.length;
    if (explicit) {
      out[p] = e.vr.charCodeAt(0);
      out[p + 1] = e.vr.charCodeAt(1);
      p += 2;
      if (LONG_VRS.has(e.vr)) {
        p += 2; // reserved
        dv.setUint32(p, len, littleEndian);
        p += 4;
      } else {
        if (len > 0xffff) throw new RangeError(`writeDicom: value of (${hexTag(e.tag)}) too long for VR ${e.vr}`);
        dv.setUint16(p, len, littleEndian);
        p += 2;
      }
    } else {
      dv.setUint32(p, len, littleEndian);
      p += 4;
    }
    out.set(e.value, p);
    p += e.value.length;
  }
  return out;
}

function headerLength(e: Element, explicit: boolean): number {
  return explicit && LONG_VRS.has(e.vr) ? 12 : 8;
}

function hexTag(tag: number): string {
  const h = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `${h.slice(0, 4)},${h.slice(4)}`;
}

/** Encapsulated Pixel Data value (PS3.5 A.4): BOT item, one fragment per frame, sequence delimiter. */
function encapsulate(frames: Uint8Array[]): Uint8Array {
  const padded = frames.map((f) => (f.length & 1 ? concat([f, new Uint8Array(1)]) : f));
  const botLen = 4 * padded.length;
  let size = 8 + botLen + 8;
  for (const f of padded) size += 8 + f.length;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  const item = (p: number, len: number) => {
    dv.setUint16(p, 0xfffe, true);
    dv.setUint16(p + 2, 0xe000, true);
    dv.setUint32(p + 4, len, true);
  };
  item(0, botLen);
  let p = 8 + botLen;
  let offset = 0; // relative to the first byte of the first fragment's item tag
  for (let i = 0; i < padded.length; i++) {
    dv.setUint32(8 + 4 * i, offset, true);
    item(p, padded[i].length);
    out.set(padded[i], p + 8);
    p += 8 + padded[i].length;
    offset += 8 + padded[i].length;
  }
  dv.setUint16(p, 0xfffe, true);
  dv.setUint16(p + 2, 0xe0dd, true);
  dv.setUint32(p + 4, 0, true);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const part of parts) n += part.length;
  const out = new Uint8Array(n);
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

/** Native pixel bytes in the dataset's byte order, padded to even length. */
function nativePixelBytes(input: DicomWriteInput, expectedSamples: number, littleEndian: boolean): Uint8Array {
  const px = input.pixels;
  if (!px) throw new RangeError('writeDicom: pixels are required unless encapsulatedFrames or omitPixelData is given');
  if (input.bitsAllocated === 8 && !(px instanceof Uint8Array)) throw new TypeError('writeDicom: bitsAllocated 8 needs a Uint8Array');
  if (input.bitsAllocated === 16 && (px instanceof Uint8Array || px instanceof Uint32Array)) throw new TypeError('writeDicom: bitsAllocated 16 needs a Uint16Array or Int16Array');
  if (input.bitsAllocated === 32 && !(px instanceof Uint32Array)) throw new TypeError('writeDicom: bitsAllocated 32 needs a Uint32Array');
  if (px.length !== expectedSamples) {
    throw new RangeError(`writeDicom: pixels has ${px.length} samples, rows*columns*samplesPerPixel*frames is ${expectedSamples}`);
  }
  if (input.bitsAllocated === 8) {
    const out = new Uint8Array(px.length + (px.length & 1));
    out.set(px as Uint8Array);
    return out;
  }
  if (px instanceof Uint32Array) {
    const out = new Uint8Array(px.length * 4);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < px.length; i++) dv.setUint32(4 * i, px[i], littleEndian);
    return out;
  }
  const out = new Uint8Array(px.length * 2);
  const dv = new DataView(out.buffer);
  const u16 = px instanceof Int16Array ? new Uint16Array(px.buffer, px.byteOffset, px.length) : (px as Uint16Array);
  for (let i = 0; i < u16.length; i++) dv.setUint16(2 * i, u16[i], littleEndian);
  return out;
}

/**
 * Native YBR_FULL_422 stores each pair of pixels as Y1 Y2 Cb Cr (PS3.3 C.7.6.3.1.2). Callers pass
 * full-resolution interleaved Y Cb Cr; chroma of each horizontal pair is averaged here.
 */
function subsample422(px: Uint8Array, rows: number, columns: number, frames: number): Uint8Array {
  if (columns % 2) throw new RangeError('writeDicom: YBR_FULL_422 needs an even number of columns');
  const out = new Uint8Array(rows * columns * 2 * frames);
  let o = 0;
  for (let i = 0; i < rows * columns * frames; i += 2) {
    const a = 3 * i;
    const b = a + 3;
    out[o++] = px[a];
    out[o++] = px[b];
    out[o++] = (px[a + 1] + px[b + 1] + 1) >> 1;
    out[o++] = (px[a + 2] + px[b + 2] + 1) >> 1;
  }
  return out;
}

export function writeDicom(input: DicomWriteInput): Uint8Array {
  const withPreamble = input.preamble !== false;
  const ts = input.transferSyntaxUid ?? (withPreamble ? TS.ExplicitVRLittleEndian : TS.ImplicitVRLittleEndian);
  checkUid('transferSyntaxUid', ts);
  if (!withPreamble && ts !== TS.ImplicitVRLittleEndian) {
    throw new RangeError('writeDicom: preamble:false writes implicit VR little endian only');
  }
  const encapsulated = input.encapsulatedFrames !== undefined;
  if (!input.omitPixelData) {
    if (!encapsulated && !NATIVE_SYNTAXES.has(ts)) throw new RangeError(`writeDicom: transfer syntax ${ts} requires encapsulatedFrames`);
    if (encapsulated && NATIVE_SYNTAXES.has(ts)) throw new RangeError(`writeDicom: encapsulatedFrames need an encapsulated transfer syntax, got ${ts}`);
  }
  const littleEndian = ts !== TS.ExplicitVRBigEndian;
  const explicit = ts !== TS.ImplicitVRLittleEndian;

  const samples = input.samplesPerPixel ?? 1;
  const photometric = input.photometricInterpretation ?? (samples === 3 ? 'RGB' : 'MONOCHROME2');
  if ((samples === 3) !== (photometric === 'RGB' || photometric.startsWith('YBR'))) {
    throw new RangeError(`writeDicom: photometricInterpretation ${photometric} does not fit samplesPerPixel ${samples}`);
  }
  const frames = input.numberOfFrames ?? 1;
  if (!Number.isInteger(frames) || frames < 1) throw new RangeError(`writeDicom: numberOfFrames must be a positive integer, got ${frames}`);
  for (const [k, v] of [['rows', input.rows], ['columns', input.columns]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 0xffff) throw new RangeError(`writeDicom: ${k} must be an integer in 1..65535, got ${v}`);
  }
  const bitsStored = input.bitsStored ?? input.bitsAllocated;
  const highBit = input.highBit ?? bitsStored - 1;
  const sopClass = input.sopClassUid ?? (input.omitPixelData ? RT_PLAN : SECONDARY_CAPTURE);
  checkUid('sopInstanceUid', input.sopInstanceUid);
  checkUid('sopClassUid', sopClass);

  const ds = new ElementSet(littleEndian);
  ds.str(0x00080016, 'UI', sopClass);
  ds.str(0x00080018, 'UI', input.sopInstanceUid);
  ds.str(0x00080060, 'CS', input.modality ?? (input.omitPixelData ? 'RTPLAN' : 'OT'));
  ds.str(0x00100010, 'PN', input.patientName);
  ds.str(0x00100020, 'LO', input.patientId);
  ds.str(0x00180015, 'CS', input.bodyPartExamined);
  ds.str(0x00185101, 'CS', input.viewPosition);
  for (const [name, tag, uid] of [
    ['studyInstanceUid', 0x0020000d, input.studyInstanceUid],
    ['seriesInstanceUid', 0x0020000e, input.seriesInstanceUid],
  ] as const) {
    if (uid !== undefined) {
      checkUid(name, uid);
      ds.str(tag, 'UI', uid);
    }
  }

  if (!input.omitPixelData) {
    ds.us(0x00280002, samples);
    ds.str(0x00280004, 'CS', photometric);
    if (samples === 3) ds.us(0x00280006, input.planarConfiguration ?? 0);
    if (input.numberOfFrames !== undefined || frames > 1) ds.str(0x00280008, 'IS', String(frames));
    ds.us(0x00280010, input.rows);
    ds.us(0x00280011, input.columns);
    ds.us(0x00280100, input.bitsAllocated);
    ds.us(0x00280101, bitsStored);
    ds.us(0x00280102, highBit);
    ds.us(0x00280103, input.pixelRepresentation ?? 0);
    if (input.windowCenter !== undefined) ds.str(0x00281050, 'DS', formatDs(input.windowCenter));
    if (input.windowWidth !== undefined) ds.str(0x00281051, 'DS', formatDs(input.windowWidth));
    if (input.rescaleIntercept !== undefined || input.rescaleSlope !== undefined) {
      ds.str(0x00281052, 'DS', formatDs(input.rescaleIntercept ?? 0));
      ds.str(0x00281053, 'DS', formatDs(input.rescaleSlope ?? 1));
    }
    if (encapsulated) {
      ds.bytes(0x7fe00010, 'OB', encapsulate(input.encapsulatedFrames!), true);
    } else {
      let expected = input.rows * input.columns * samples * frames;
      let px = input.pixels;
      if (photometric === 'YBR_FULL_422' && px instanceof Uint8Array && px.length === expected) {
        px = subsample422(px, input.rows, input.columns, frames);
        expected = px.length;
      }
      const bytes = nativePixelBytes({ ...input, pixels: px }, expected, littleEndian);
      ds.bytes(0x7fe00010, input.bitsAllocated === 8 ? 'OB' : 'OW', bytes);
    }
  }

  let dataset = encodeElements(ds.list, explicit, littleEndian);
  if (!withPreamble) return dataset;
  if (ts === TS.DeflatedExplicitVRLittleEndian) dataset = new Uint8Array(deflateRawSync(dataset));

  return concat([fileMetaHeader({ sopClassUid: sopClass, sopInstanceUid: input.sopInstanceUid, transferSyntaxUid: ts }), dataset]);
}

export interface FileMeta {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  /** (0002,0013); default this writer's. */
  implementationVersionName?: string;
  /** (0002,0016) Source Application Entity Title, when the file came over the network. */
  sourceAeTitle?: string;
}

/**
 * What precedes a data set in a Part 10 file: the 128-byte preamble, "DICM" and the File Meta
 * Information group (always explicit VR little endian, PS3.10 7.1), its group length included.
 */
export function fileMetaHeader(m: FileMeta): Uint8Array {
  const meta = new ElementSet(true);
  meta.bytes(0x00020001, 'OB', new Uint8Array([0, 1]));
  meta.str(0x00020002, 'UI', m.sopClassUid);
  meta.str(0x00020003, 'UI', m.sopInstanceUid);
  meta.str(0x00020010, 'UI', m.transferSyntaxUid);
  meta.str(0x00020012, 'UI', IMPLEMENTATION_CLASS_UID);
  meta.str(0x00020013, 'SH', m.implementationVersionName ?? IMPLEMENTATION_VERSION_NAME);
  meta.str(0x00020016, 'AE', m.sourceAeTitle);
  const metaBody = encodeElements(meta.list, true, true);
  const groupLength = new ElementSet(true);
  groupLength.ul(0x00020000, metaBody.length);
  const head = new Uint8Array(132);
  head.set([0x44, 0x49, 0x43, 0x4d], 128); // "DICM"
  return concat([head, encodeElements(groupLength.list, true, true), metaBody]);
}
