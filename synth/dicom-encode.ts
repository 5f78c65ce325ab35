/**
 * Turns an 8-bit MONOCHROME2 phantom into DICOM Part 10 bytes in a chosen transfer syntax:
 * native syntaxes through the project's writer, JPEG Baseline through sharp (libjpeg-turbo,
 * 1 component, SOF0) encapsulated by the writer.
 */
import sharp from 'sharp';
import { writeDicom, type DicomWriteInput } from '../core/dicom/write.ts';
import { TS, isKnownTransferSyntax } from '../core/dicom/transfer-syntax.ts';

export const NATIVE_SYNTAXES: readonly string[] = [
  TS.ImplicitVRLittleEndian,
  TS.ExplicitVRLittleEndian,
  TS.ExplicitVRBigEndian,
  TS.DeflatedExplicitVRLittleEndian,
];

/** Transfer syntaxes `encodeGrayDicom` can produce. */
export const SYNTH_TRANSFER_SYNTAXES: readonly string[] = [...NATIVE_SYNTAXES, TS.JPEGBaseline];

/** Everything about the object except its pixels and encoding. */
export type GrayDicomMeta = Omit<
  DicomWriteInput,
  'rows' | 'columns' | 'pixels' | 'bitsAllocated' | 'bitsStored' | 'highBit' | 'pixelRepresentation' | 'photometricInterpretation' | 'samplesPerPixel' | 'transferSyntaxUid' | 'encapsulatedFrames'
>;

export class SynthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SynthError';
  }
}

/** Baseline JPEG of one 8-bit grey frame: one component, 4:4:4, not progressive. */
export async function encodeJpegBaseline(pixels: Uint8Array, rows: number, columns: number, quality = 95): Promise<Uint8Array> {
  if (pixels.length !== rows * columns) throw new RangeError(`JPEG encode: ${pixels.length} pixels for ${rows}x${columns}`);
  const buf = await sharp(pixels, { raw: { width: columns, height: rows, channels: 1 } })
    .toColourspace('b-w')
    .jpeg({ quality, progressive: false, mozjpeg: false, optimiseCoding: true })
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

export interface EncodeOptions {
  transferSyntaxUid: string;
  /** JPEG quality for JPEG Baseline (1..100). Default 95. */
  jpegQuality?: number;
}

/** The writer input for an 8-bit MONOCHROME2 single-frame image (pixels and syntax not set). */
export function grayDicomInput(rows: number, columns: number, meta: GrayDicomMeta): DicomWriteInput {
  return {
    ...meta,
    rows,
    columns,
    bitsAllocated: 8,
    bitsStored: 8,
    highBit: 7,
    pixelRepresentation: 0,
    photometricInterpretation: 'MONOCHROME2',
    samplesPerPixel: 1,
  };
}

export async function encodeGrayDicom(pixels: Uint8Array, rows: number, columns: number, meta: GrayDicomMeta, opts: EncodeOptions): Promise<Uint8Array> {
  const ts = opts.transferSyntaxUid;
  const base = grayDicomInput(rows, columns, meta);
  if (NATIVE_SYNTAXES.includes(ts)) return writeDicom({ ...base, pixels, transferSyntaxUid: ts });
  if (ts === TS.JPEGBaseline) {
    const frame = await encodeJpegBaseline(pixels, rows, columns, opts.jpegQuality ?? 95);
    return writeDicom({ ...base, transferSyntaxUid: ts, encapsulatedFrames: [frame] });
  }
  const known = isKnownTransferSyntax(ts) ? 'is not produced here' : 'is not a known transfer syntax UID';
  throw new SynthError(`transfer syntax ${ts} ${known} by encodeGrayDicom; use one of ${SYNTH_TRANSFER_SYNTAXES.join(', ')}, or encodeVariant for dcmtk/OpenJPEG-made syntaxes`);
}
