/** JPEG-LS lossless (.4.80) and near-lossless (.4.81) through CharLS in dcmjs-codecs. */
import { DicomError } from '../errors.ts';
import { assertEndMarker, checkAgainstHeader, readJpegHeader } from './codestream.ts';
import { makeContext, samplesFrom, withNativeCodecs } from './dcmjs-wasm.ts';
import type { DecodedFrame, FrameInput, PixelCodec } from './types.ts';

export const jpegLsCodec: PixelCodec = {
  family: 'jpeg-ls',
  library: 'dcmjs-codecs (CharLS)',
  async decode({ data, module: m }: FrameInput): Promise<DecodedFrame> {
    const info = readJpegHeader(data, 'JPEG-LS');
    if (info.kind !== 'jpeg-ls') throw new DicomError('CODEC_FAILED', 'JPEG-LS: frame holds a JPEG (not JPEG-LS) start-of-frame marker');
    checkAgainstHeader(info, m, 'JPEG-LS');
    const codestream = assertEndMarker(data, 'JPEG-LS');
    const decoded = await withNativeCodecs('JPEG-LS (CharLS)', (nc) => nc.decodeJpegLs(makeContext(codestream, m, info.precision), {}).getDecodedBuffer());
    return {
      samples: samplesFrom(decoded, info.precision, m.rows * m.columns * m.samplesPerPixel, 'JPEG-LS'),
      rows: m.rows,
      columns: m.columns,
      samplesPerPixel: m.samplesPerPixel,
      // CharLS hands back colour planes one after another when the scan is not interleaved (ILV 0).
      planar: m.samplesPerPixel === 3 && info.interleave === 0,
      colourSpace: 'declared',
      bitShift: 0,
    };
  },
};
