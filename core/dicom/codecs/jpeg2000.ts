/**
 * JPEG 2000 lossless-only (.4.90) and lossy (.4.91) through OpenJPEG in dcmjs-codecs. The wrapper
 * sizes its output from the DICOM header and only converts 1 component or 3 8-bit components, so
 * the SIZ marker is checked first and anything else is refused before decoding.
 */
import { DicomError } from '../errors.ts';
import { assertEndMarker, checkAgainstHeader, readJ2kHeader } from './codestream.ts';
import { makeContext, samplesFrom, withNativeCodecs } from './dcmjs-wasm.ts';
import type { DecodedFrame, FrameInput, PixelCodec } from './types.ts';

export const jpeg2000Codec: PixelCodec = {
  family: 'jpeg2000',
  library: 'dcmjs-codecs (OpenJPEG)',
  async decode({ data, module: m }: FrameInput): Promise<DecodedFrame> {
    const info = readJ2kHeader(data);
    checkAgainstHeader(info, m, 'JPEG 2000');
    if (info.subsampled) throw new DicomError('UNSUPPORTED_PIXEL_FORMAT', 'JPEG 2000 codestream has subsampled components');
    if (info.components === 3 && info.precision > 8) throw new DicomError('UNSUPPORTED_PIXEL_FORMAT', `JPEG 2000 colour at ${info.precision} bits is not supported`);
    if (info.precision > 16) throw new DicomError('UNSUPPORTED_PIXEL_FORMAT', `JPEG 2000 precision ${info.precision} bits is not supported`);
    const trimmed = assertEndMarker(data, 'JPEG 2000');
    // A raw codestream goes without its padding; a JP2 file stays whole (its boxes declare their lengths).
    const codestream = info.codestreamOffset === 0 ? trimmed : data;
    const decoded = await withNativeCodecs('JPEG 2000 (OpenJPEG)', (nc) => nc.decodeJpeg2000(makeContext(codestream, m, info.precision), {}).getDecodedBuffer());
    return {
      samples: samplesFrom(decoded, info.precision, m.rows * m.columns * m.samplesPerPixel, 'JPEG 2000'),
      rows: m.rows,
      columns: m.columns,
      samplesPerPixel: m.samplesPerPixel,
      planar: false,
      // OpenJPEG undoes the multiple-component transform, so YBR_ICT/YBR_RCT come out as RGB.
      colourSpace: m.photometricInterpretation === 'YBR_ICT' || m.photometricInterpretation === 'YBR_RCT' ? 'RGB' : 'declared',
      bitShift: 0,
    };
  },
};
