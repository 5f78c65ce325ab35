/** The one dispatch from codec family (see ../transfer-syntax.ts) to the module that decodes it. */
import type { CodecFamily } from '../transfer-syntax.ts';
import { jpeg2000Codec } from './jpeg2000.ts';
import { jpegBaselineCodec } from './jpeg-baseline.ts';
import { jpegLosslessCodec } from './jpeg-lossless.ts';
import { jpegLsCodec } from './jpeg-ls.ts';
import { nativeCodec } from './native.ts';
import { rleCodec } from './rle.ts';
import type { PixelCodec } from './types.ts';

export const CODECS: Readonly<Record<CodecFamily, PixelCodec>> = {
  native: nativeCodec,
  rle: rleCodec,
  'jpeg-baseline': jpegBaselineCodec,
  'jpeg-lossless': jpegLosslessCodec,
  'jpeg-ls': jpegLsCodec,
  jpeg2000: jpeg2000Codec,
};

export type { DecodedFrame, FrameInput, PixelCodec, SampleArray } from './types.ts';
