/**
 * Any-syntax encoding for test variants. Native syntaxes and JPEG Baseline (sharp) are made by
 * `encodeGrayDicom`, as for the main layout; every other syntax (RLE, JPEG Lossless, JPEG-LS,
 * JPEG 2000) is delegated to the shared DICOM test fixtures (dcmtk / OpenJPEG), so the project has
 * one implementation driving those tools.
 */
import { makeDicomVariant } from '../core/dicom/testing/fixtures.ts';
import { encodeGrayDicom, grayDicomInput, SYNTH_TRANSFER_SYNTAXES, type GrayDicomMeta } from './dicom-encode.ts';

export async function encodeVariant(pixels: Uint8Array, rows: number, columns: number, meta: GrayDicomMeta, tsUid: string, jpegQuality?: number): Promise<Uint8Array> {
  if (SYNTH_TRANSFER_SYNTAXES.includes(tsUid)) return encodeGrayDicom(pixels, rows, columns, meta, { transferSyntaxUid: tsUid, jpegQuality });
  return makeDicomVariant({ ...grayDicomInput(rows, columns, meta), pixels }, tsUid);
}
