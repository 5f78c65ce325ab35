/**
 * JPEG Lossless, Non-Hierarchical (Process 14: .4.57, and selection value 1: .4.70), through the
 * IJG 16-bit lossless decoder of dcmtk (dcmjs-codecs). Chosen over jpeg-lossless-decoder-js: ~2x
 * faster here, and it throws on corrupt entropy data where the pure-JS decoder returns wrong pixels.
 */
import { assertEndMarker, checkAgainstHeader, readJpegHeader } from './codestream.ts';
import { decodeJpegIjg } from './jpeg-ijg.ts';
import type { DecodedFrame, FrameInput, PixelCodec } from './types.ts';

export const jpegLosslessCodec: PixelCodec = {
  family: 'jpeg-lossless',
  library: 'dcmjs-codecs (dcmtk IJG lossless)',
  async decode({ data, module: m }: FrameInput): Promise<DecodedFrame> {
    const info = readJpegHeader(data, 'JPEG Lossless');
    checkAgainstHeader(info, m, 'JPEG Lossless');
    return decodeJpegIjg(assertEndMarker(data, 'JPEG Lossless'), m, info, 'JPEG Lossless (IJG)');
  },
};
