/**
 * JPEG decoding through dcmtk's IJG libraries (8, 12 and 16-bit builds, lossy and lossless
 * process 14) compiled to wasm in dcmjs-codecs. The library picks the 8/12/16-bit build from the
 * start-of-frame precision.
 */
import type { PixelModule } from '../pixel-module.ts';
import type { CodestreamInfo } from './codestream.ts';
import { makeContext, samplesFrom, withNativeCodecs } from './dcmjs-wasm.ts';
import type { DecodedFrame } from './types.ts';

export async function decodeJpegIjg(data: Uint8Array, m: PixelModule, info: CodestreamInfo, what: string): Promise<DecodedFrame> {
  const decoded = await withNativeCodecs(what, (nc) =>
    // No colour conversion: samples stay in the colour space the header declares (PS3.5 8.2.1).
    nc.decodeJpeg(makeContext(data, m, info.precision), { convertColorspaceToRgb: false }).getDecodedBuffer(),
  );
  return {
    samples: samplesFrom(decoded, info.precision, m.rows * m.columns * m.samplesPerPixel, what),
    rows: m.rows,
    columns: m.columns,
    samplesPerPixel: m.samplesPerPixel,
    planar: false,
    colourSpace: 'declared',
    bitShift: 0,
  };
}
