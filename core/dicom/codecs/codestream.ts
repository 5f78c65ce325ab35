/**
 * Reads the header of a JPEG / JPEG-LS / JPEG 2000 codestream without decoding it, so that its
 * size, precision and components can be checked against the DICOM header BEFORE a decoder
 * allocates anything: a small file claiming a 60000x60000 codestream is rejected here, and the
 * wasm decoders (which trust the dimensions they are given) never see a mismatching stream.
 */
import { DicomError } from '../errors.ts';
import type { PixelModule } from '../pixel-module.ts';

export interface CodestreamInfo {
  kind: 'jpeg' | 'jpeg-ls' | 'j2k';
  width: number;
  height: number;
  components: number;
  /** Bits per sample (JPEG P, JPEG-LS P, J2K Ssiz + 1). */
  precision: number;
  /** JPEG start-of-frame marker (0xC0 baseline, 0xC1 extended, 0xC3 lossless...), or 0xF7 for JPEG-LS. */
  sof?: number;
  /** JPEG-LS interleave mode of the first scan (0 none, 1 line, 2 sample). */
  interleave?: number;
  /** J2K: components signed. */
  signed?: boolean;
  /** J2K: any component subsampled (XRsiz/YRsiz != 1). */
  subsampled?: boolean;
}

function corrupt(what: string, message: string): DicomError {
  return new DicomError('CODEC_FAILED', `${what}: ${message}`);
}

/** Walks JPEG marker segments up to the first SOS. */
export function readJpegHeader(b: Uint8Array, what = 'JPEG'): CodestreamInfo {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) throw corrupt(what, 'frame does not start with an SOI marker');
  let p = 2;
  let info: CodestreamInfo | undefined;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) throw corrupt(what, `expected a marker at byte ${p}`);
    const marker = b[p + 1];
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      p += 2;
      continue;
    }
    const len = (b[p + 2] << 8) | b[p + 3];
    if (len < 2 || p + 2 + len > b.length) throw corrupt(what, `marker 0xFF${marker.toString(16).toUpperCase()} segment runs past the end of the frame`);
    const seg = p + 4;
    const isSof = (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) || marker === 0xf7;
    if (isSof) {
      if (len < 8) throw corrupt(what, 'start-of-frame segment too short');
      info = {
        kind: marker === 0xf7 ? 'jpeg-ls' : 'jpeg',
        sof: marker,
        precision: b[seg],
        height: (b[seg + 1] << 8) | b[seg + 2],
        width: (b[seg + 3] << 8) | b[seg + 4],
        components: b[seg + 5],
      };
    } else if (marker === 0xda) {
      if (!info) throw corrupt(what, 'scan starts before any start-of-frame marker');
      if (info.kind === 'jpeg-ls') {
        const ns = b[seg];
        info.interleave = b[seg + 1 + 2 * ns + 1];
      }
      return info;
    } else if (marker === 0xd9) {
      break;
    }
    p += 2 + len;
  }
  throw corrupt(what, 'no start-of-frame and scan found before the end of the frame');
}

/** A JPEG 2000 codestream (SOC + SIZ), also when wrapped in a JP2 file (returns the inner codestream offset). */
export function readJ2kHeader(b: Uint8Array): CodestreamInfo & { codestreamOffset: number } {
  let off = 0;
  if (b.length >= 12 && b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] === 0x0c && b[4] === 0x6a && b[5] === 0x50) {
    // JP2 file format: find the contiguous codestream box 'jp2c'.
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let p = 0;
    off = -1;
    while (p + 8 <= b.length) {
      let boxLen = dv.getUint32(p);
      const type = String.fromCharCode(b[p + 4], b[p + 5], b[p + 6], b[p + 7]);
      let header = 8;
      if (boxLen === 1 && p + 16 <= b.length) {
        boxLen = Number(dv.getBigUint64(p + 8));
        header = 16;
      } else if (boxLen === 0) boxLen = b.length - p;
      if (type === 'jp2c') {
        off = p + header;
        break;
      }
      if (boxLen < header) break;
      p += boxLen;
    }
    if (off < 0) throw corrupt('JPEG 2000', 'JP2 file has no codestream box');
  }
  if (off + 4 > b.length || b[off] !== 0xff || b[off + 1] !== 0x4f || b[off + 2] !== 0xff || b[off + 3] !== 0x51) {
    throw corrupt('JPEG 2000', 'frame does not start with SOC and SIZ markers');
  }
  const s = off + 4;
  if (s + 40 > b.length) throw corrupt('JPEG 2000', 'SIZ segment is cut short');
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const xsiz = dv.getUint32(s + 4);
  const ysiz = dv.getUint32(s + 8);
  const xo = dv.getUint32(s + 12);
  const yo = dv.getUint32(s + 16);
  const csiz = dv.getUint16(s + 36);
  if (s + 38 + 3 * csiz > b.length) throw corrupt('JPEG 2000', 'SIZ component list is cut short');
  let precision = 0;
  let signed = false;
  let subsampled = false;
  for (let c = 0; c < csiz; c++) {
    const ssiz = b[s + 38 + 3 * c];
    precision = Math.max(precision, (ssiz & 0x7f) + 1);
    signed ||= (ssiz & 0x80) !== 0;
    subsampled ||= b[s + 39 + 3 * c] !== 1 || b[s + 40 + 3 * c] !== 1;
  }
  return { kind: 'j2k', width: xsiz - xo, height: ysiz - yo, components: csiz, precision, signed, subsampled, codestreamOffset: off };
}

/**
 * JPEG, JPEG-LS and J2K codestreams all end with 0xFFD9 (EOI / EOC). A missing end marker means
 * the fragment was cut short; several decoders would silently pad the image instead of failing.
 * Returns the codestream up to and including its end marker, which is what decoders are given.
 */
export function assertEndMarker(b: Uint8Array, what: string): Uint8Array {
  let end = b.length;
  // Fragments are padded to even length, and writers pad further after the end marker: with 0x00,
  // or with 0xFF (fill bytes, which JPEG allows before any marker and libjpeg skips). Up to 64 bytes.
  while (end > 2 && (b[end - 1] === 0 || b[end - 1] === 0xff) && b.length - end < 64) end--;
  if (end < 2 || b[end - 2] !== 0xff || b[end - 1] !== 0xd9) {
    throw corrupt(what, 'codestream does not end with an end-of-image marker (the fragment is truncated or corrupt)');
  }
  return end === b.length ? b : b.subarray(0, end);
}

/** Codestream geometry must match the DICOM header before anything is decoded. */
export function checkAgainstHeader(info: CodestreamInfo, m: PixelModule, what: string): void {
  if (info.width !== m.columns || info.height !== m.rows) {
    throw new DicomError(
      'DIMENSION_MISMATCH',
      `${what} codestream is ${info.width}x${info.height} but the header says ${m.columns}x${m.rows} (columns x rows)`,
      { codestream: [info.width, info.height], header: [m.columns, m.rows] },
    );
  }
  if (info.components !== m.samplesPerPixel) {
    throw new DicomError('DIMENSION_MISMATCH', `${what} codestream has ${info.components} components but SamplesPerPixel is ${m.samplesPerPixel}`);
  }
  if (info.precision < 1 || info.precision > m.bitsAllocated) {
    throw new DicomError('UNSUPPORTED_PIXEL_FORMAT', `${what} codestream precision ${info.precision} bits does not fit BitsAllocated ${m.bitsAllocated}`);
  }
}
