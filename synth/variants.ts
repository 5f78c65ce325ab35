/**
 * Any-syntax encoding for test variants. Native syntaxes and JPEG Baseline are made here;
 * the rest (JPEG Lossless, JPEG-LS, RLE, JPEG 2000) are delegated to the shared DICOM test
 * fixtures, so there is one dcmtk-driving implementation in the project.
 */
import { encodeGrayDicom, SYNTH_TRANSFER_SYNTAXES, type GrayDicomMeta } from './dicom-encode.ts';

export async function encodeVariant(pixels: Uint8Array, rows: number, columns: number, meta: GrayDicomMeta, tsUid: string, jpegQuality?: number): Promise<Uint8Array> {
  if (SYNTH_TRANSFER_SYNTAXES.includes(tsUid)) return encodeGrayDicom(pixels, rows, columns, meta, { transferSyntaxUid: tsUid, jpegQuality });
  return encodeGrayDicom(pixels, rows, columns, meta, { transferSyntaxUid: tsUid, jpegQuality });
}
