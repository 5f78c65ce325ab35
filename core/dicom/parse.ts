/**
 * Bytes -> dicom-parser DataSet, with every failure mapped to a DicomError. Handles Part 10 files
 * (preamble + "DICM" + group 0002), bare datasets without preamble (as old archives hold), meta
 * headers without preamble, and deflated datasets (inflated with a size cap so a small deflate
 * bomb cannot allocate gigabytes).
 */
import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { inflateRawSync } from 'node:zlib';
import { DicomError } from './errors.ts';
import { TS } from './transfer-syntax.ts';

export interface ParsedDicom {
  dataSet: DataSet;
  transferSyntaxUid: string;
  /** How the bytes were laid out, for diagnostics. */
  layout: 'part10' | 'meta-without-preamble' | 'raw-dataset';
}

const DICM = [0x44, 0x49, 0x43, 0x4d];

/** Attributes at least one of which any real composite object carries; random bytes that happen to parse do not. */
const IDENTIFYING_TAGS = ['x00080016', 'x00080018', 'x00080060', 'x0020000d', 'x0020000e', 'x00280010', 'x7fe00010'];

/** A message from whatever a library threw (dicom-parser throws strings and {exception, dataSet} objects). */
export function describeThrown(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object' && 'exception' in e) return describeThrown((e as { exception: unknown }).exception);
  if (typeof e === 'number') return `native exception ${e}`;
  return String(e);
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

function hasDicmAt128(b: Uint8Array): boolean {
  return b.length >= 132 && b[128] === DICM[0] && b[129] === DICM[1] && b[130] === DICM[2] && b[131] === DICM[3];
}

/** True when `b` could be the start of a Part 10 file cut off inside its preamble or magic. */
function isPrefixOfPart10(b: Uint8Array): boolean {
  if (b.length >= 132) return false;
  for (let i = 0; i < Math.min(b.length, 128); i++) if (b[i] !== 0) return false;
  for (let i = 128; i < b.length; i++) if (b[i] !== DICM[i - 128]) return false;
  return true;
}

const VRS = new Set(
  'AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(' '),
);
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV']);

/**
 * Decides whether bytes without a preamble look like a little-endian dataset, and which VR
 * encoding, by walking the first few element headers: tags must ascend, groups must be even and
 * lengths must fit. Random bytes pass this with negligible probability; a PNG fails at once.
 */
function sniffRawDataset(b: Uint8Array): 'explicit' | 'implicit' | undefined {
  if (b.length < 8) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const vr0 = String.fromCharCode(b[4], b[5]);
  const explicit = VRS.has(vr0);
  let pos = 0;
  let prevTag = -1;
  let seen = 0;
  while (pos < b.length && seen < 4) {
    if (pos + 8 > b.length) return undefined;
    const group = dv.getUint16(pos, true);
    const elem = dv.getUint16(pos + 2, true);
    const tag = group * 0x10000 + elem;
    if (group & 1 || group < 2 || tag <= prevTag) return undefined;
    let len: number;
    let header: number;
    if (explicit) {
      const vr = String.fromCharCode(b[pos + 4], b[pos + 5]);
      if (!VRS.has(vr)) return undefined;
      if (LONG_VRS.has(vr)) {
        if (pos + 12 > b.length) return undefined;
        len = dv.getUint32(pos + 8, true);
        header = 12;
      } else {
        len = dv.getUint16(pos + 6, true);
        header = 8;
      }
    } else {
      len = dv.getUint32(pos + 4, true);
      header = 8;
    }
    if (len === 0xffffffff) return explicit ? 'explicit' : 'implicit'; // sequence or encapsulated data: stop sniffing
    if (pos + header + len > b.length && seen === 0) return undefined;
    prevTag = tag;
    pos += header + len;
    seen++;
  }
  return explicit ? 'explicit' : 'implicit';
}

function classifyParserError(e: unknown, context: string): DicomError {
  const msg = oneLine(describeThrown(e));
  if (/past end of buffer|buffer overrun|buffer overread|cannot seek|unexpected end of file/i.test(msg)) {
    return new DicomError('TRUNCATED', `DICOM ${context} is cut short (${msg})`, { cause: msg });
  }
  return new DicomError('NOT_DICOM', `malformed DICOM ${context}: ${msg}`, { cause: msg });
}

/**
 * Where the file meta group ends by its (0002,0000) group length, else the whole input. dicom-parser's
 * readPart10Header reads one whole element past the group before it looks at its tag; in a deflated
 * file that element is compressed bytes, which can look like a sequence and fail the read.
 */
function metaGroupEnd(bytes: Uint8Array): number {
  const b = bytes;
  const explicitUL = b.length >= 144 && b[132] === 0x02 && b[133] === 0 && b[134] === 0 && b[135] === 0 && b[136] === 0x55 && b[137] === 0x4c && b[138] === 4 && b[139] === 0;
  if (!explicitUL) return bytes.length;
  const end = 144 + (b[140]! | (b[141]! << 8) | (b[142]! << 16) | (b[143]! << 24)) >>> 0;
  return end <= bytes.length ? end : bytes.length;
}

function makeInflater(maxInflatedBytes: number) {
  return (byteArray: Uint8Array, position: number): Uint8Array => {
    let inflated: Buffer;
    try {
      inflated = inflateRawSync(byteArray.subarray(position), { maxOutputLength: maxInflatedBytes });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
        throw new DicomError('TOO_LARGE', `deflated dataset inflates to more than ${maxInflatedBytes} bytes`);
      }
      if (code === 'Z_BUF_ERROR') throw new DicomError('TRUNCATED', 'deflated dataset is cut short (zlib: unexpected end of file)');
      throw new DicomError('NOT_DICOM', `deflated dataset cannot be inflated: ${oneLine(describeThrown(e))}`);
    }
    const full = new Uint8Array(position + inflated.length);
    full.set(byteArray.subarray(0, position), 0);
    full.set(inflated, position);
    return full;
  };
}

/** Element values and encapsulated fragments must lie inside the buffer (dicom-parser does not check implicit VR). */
function checkBounds(ds: DataSet): void {
  const size = ds.byteArray.length;
  for (const el of Object.values(ds.elements) as Element[]) {
    if (el.fragments) {
      for (const f of el.fragments) {
        if (f.position + f.length > size) {
          throw new DicomError('TRUNCATED', `encapsulated Pixel Data fragment ends at byte ${f.position + f.length}, past the end of the file (${size} bytes)`);
        }
      }
      continue;
    }
    if (el.hadUndefinedLength) continue;
    if (el.dataOffset + el.length > size) {
      throw new DicomError('TRUNCATED', `element (${el.tag.slice(1, 5)},${el.tag.slice(5)}) declares ${el.length} bytes but the file ends after ${size - el.dataOffset}`, {
        tag: el.tag,
      });
    }
  }
  for (const w of ds.warnings ?? []) {
    if (/missing sequence delimiter/i.test(w)) throw new DicomError('TRUNCATED', `encapsulated Pixel Data has no sequence delimiter: the file is cut short`);
  }
}

function readTransferSyntax(meta: DataSet): string | undefined {
  const el = meta.elements.x00020010;
  if (!el) return undefined;
  return meta.string('x00020010')?.replace(/\0/g, '').trim() || undefined;
}

/**
 * Reads the file meta (if any) and returns the transfer syntax, before the dataset itself is parsed,
 * so an unsupported syntax is reported as such rather than as a parse failure of its encoding.
 */
export function readTransferSyntaxOnly(bytes: Uint8Array): { ts: string; layout: ParsedDicom['layout']; datasetStart: number } {
  if (bytes.length === 0) throw new DicomError('NOT_DICOM', 'input is empty');
  if (hasDicmAt128(bytes)) {
    let meta: DataSet;
    try {
      meta = dicomParser.readPart10Header(bytes.subarray(0, metaGroupEnd(bytes))) as DataSet;
    } catch (e) {
      throw classifyParserError(e, 'header');
    }
    const position = (meta as unknown as { position: number }).position;
    for (const el of Object.values(meta.elements) as Element[]) {
      if (el.dataOffset + el.length > bytes.length) {
        throw new DicomError('TRUNCATED', `file ends after ${bytes.length} bytes, inside the file meta information`);
      }
    }
    // A meta group that claims more bytes than the file has was cut short (dicom-parser seeks past the end silently).
    const groupLength = meta.elements.x00020000 ? meta.uint32('x00020000') : undefined;
    const metaEnd = groupLength !== undefined ? meta.elements.x00020000.dataOffset + 4 + groupLength : position;
    if (metaEnd > bytes.length || position > bytes.length) {
      throw new DicomError('TRUNCATED', `file ends after ${bytes.length} bytes, inside the file meta information (which ends at byte ${Math.max(metaEnd, position)})`);
    }
    const ts = readTransferSyntax(meta);
    if (ts) return { ts, layout: 'part10', datasetStart: position };
    // Meta without a transfer syntax: decide from the dataset encoding itself.
    const sniff = sniffRawDataset(bytes.subarray(position));
    if (!sniff) throw new DicomError('NOT_DICOM', 'file meta has no Transfer Syntax UID and the dataset encoding is not recognisable');
    return { ts: sniff === 'explicit' ? TS.ExplicitVRLittleEndian : TS.ImplicitVRLittleEndian, layout: 'part10', datasetStart: position };
  }
  if (isPrefixOfPart10(bytes)) throw new DicomError('TRUNCATED', `file ends after ${bytes.length} bytes, inside the 128-byte preamble or "DICM" prefix`);
  const sniff = sniffRawDataset(bytes);
  if (!sniff) throw new DicomError('NOT_DICOM', 'no "DICM" prefix at byte 128 and the bytes do not start like a DICOM dataset');
  const group = bytes[0] | (bytes[1] << 8);
  if (group === 0x0002) {
    // Group 0002 without preamble: treat it as a Part 10 file missing its first 132 bytes.
    const withPreamble = new Uint8Array(132 + bytes.length);
    withPreamble.set(DICM, 128);
    withPreamble.set(bytes, 132);
    const inner = readTransferSyntaxOnly(withPreamble);
    return { ...inner, layout: 'meta-without-preamble' };
  }
  return { ts: sniff === 'explicit' ? TS.ExplicitVRLittleEndian : TS.ImplicitVRLittleEndian, layout: 'raw-dataset', datasetStart: 0 };
}

export type FileHead = ReturnType<typeof readTransferSyntaxOnly>;

/** Parses the dataset whose layout and transfer syntax `readTransferSyntaxOnly` found. */
export function parseDataset(bytes: Uint8Array, head: FileHead, maxInflatedBytes: number): ParsedDicom {
  let input = bytes;
  if (head.layout === 'meta-without-preamble') {
    input = new Uint8Array(132 + bytes.length);
    input.set(DICM, 128);
    input.set(bytes, 132);
  }
  // A deflated dataset is inflated here (at the meta group's end), so dicom-parser never reads compressed bytes as an element.
  let inflater: (b: Uint8Array, position: number) => Uint8Array = makeInflater(maxInflatedBytes);
  if (head.ts === TS.DeflatedExplicitVRLittleEndian && head.layout !== 'raw-dataset') {
    input = inflater(input, metaGroupEnd(input));
    inflater = (b) => b;
  }
  input = withLongFormExtendedOffsetTable(input);
  let dataSet: DataSet;
  try {
    dataSet = parseWith(input, head, { inflater });
  } catch (e) {
    if (!/buffer overrun/.test(describeThrown(e))) throw e;
    // dicom-parser seeks by the length of the sequence delimiter that ends encapsulated Pixel Data;
    // some writers give it 0xFFFFFFFF instead of 0, which dcmtk and pydicom ignore. Retry once with
    // the last delimiter's length zeroed (in a copy); anything else that overran still fails.
    const fixed = withZeroLengthLastSequenceDelimiter(input);
    if (!fixed) throw e;
    try {
      dataSet = parseWith(fixed, head, { inflater });
    } catch {
      throw e;
    }
  }
  checkBounds(dataSet);
  if (!IDENTIFYING_TAGS.some((t) => dataSet.elements[t] !== undefined)) {
    throw new DicomError('NOT_DICOM', 'dataset parsed but holds none of SOP Class/Instance UID, Modality, Study/Series UID, Rows or Pixel Data');
  }
  return { dataSet, transferSyntaxUid: head.ts, layout: head.layout };
}

/**
 * dicom-parser predates the OV VR (2019) and reads its 12-byte explicit header as the 8-byte form,
 * derailing on the Extended Offset Table (7FE0,0001) and its Lengths (7FE0,0002): "buffer overrun"
 * on files dcmtk reads. Their headers are rewritten to OB (the same long form, same bytes) in a copy.
 */
function withLongFormExtendedOffsetTable(bytes: Uint8Array): Uint8Array {
  let out = bytes;
  for (const element of [0x01, 0x02]) {
    const pattern = Buffer.from([0xe0, 0x7f, element, 0x00, 0x4f, 0x56, 0x00, 0x00]); // (7FE0,000x) "OV" 00 00, little endian
    const at = Buffer.from(out.buffer, out.byteOffset, out.byteLength).indexOf(pattern);
    if (at < 0) continue;
    if (out === bytes) out = bytes.slice();
    out[at + 5] = 0x42; // 'B'
  }
  return out;
}

/** A copy with the last (FFFE,E0DD) item's length set to 0, or undefined when it already is 0 or there is none. */
function withZeroLengthLastSequenceDelimiter(bytes: Uint8Array): Uint8Array | undefined {
  const at = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).lastIndexOf(Buffer.from([0xfe, 0xff, 0xdd, 0xe0]));
  if (at < 0 || at + 8 > bytes.length) return undefined;
  if (bytes[at + 4] === 0 && bytes[at + 5] === 0 && bytes[at + 6] === 0 && bytes[at + 7] === 0) return undefined;
  const out = bytes.slice();
  out.fill(0, at + 4, at + 8);
  return out;
}

function parseWith(input: Uint8Array, head: FileHead, options: Record<string, unknown>): DataSet {
  let dataSet: DataSet;
  try {
    if (head.layout === 'raw-dataset') {
      dataSet = dicomParser.parseDicom(input, { ...options, TransferSyntaxUID: head.ts } as dicomParser.ParseDicomOptions);
    } else {
      const metaHasTs = (() => {
        try {
          return readTransferSyntax(dicomParser.readPart10Header(input) as DataSet) !== undefined;
        } catch {
          return false;
        }
      })();
      if (metaHasTs) {
        dataSet = dicomParser.parseDicom(input, options as dicomParser.ParseDicomOptions);
      } else {
        // dicom-parser insists on (0002,0010); parse the dataset after the meta as a raw one.
        dataSet = dicomParser.parseDicom(input.subarray(head.datasetStart), { ...options, TransferSyntaxUID: head.ts } as dicomParser.ParseDicomOptions);
      }
    }
  } catch (e) {
    if (e instanceof DicomError) throw e;
    const inner = (e as { exception?: unknown })?.exception;
    if (inner instanceof DicomError) throw inner;
    throw classifyParserError(e, 'dataset');
  }
  return dataSet;
}
