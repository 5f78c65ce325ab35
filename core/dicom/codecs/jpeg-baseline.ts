/**
 * JPEG Baseline (1.2.840.10008.1.2.4.50) and Extended (.51). 8-bit streams go to sharp (libvips +
 * mozjpeg, native, runs on libuv's pool): the hot path for SIIM chest X-rays. 12-bit streams,
 * which no libjpeg-turbo build in sharp or @cornerstonejs decodes, go to dcmtk's IJG 12-bit
 * decoder in dcmjs-codecs.
 */
import sharp, { type OutputInfo } from 'sharp';
import { DicomError } from '../errors.ts';
import type { PixelModule } from '../pixel-module.ts';
import { assertEndMarker, checkAgainstHeader, readJpegHeader, type CodestreamInfo } from './codestream.ts';
import { decodeJpegIjg } from './jpeg-ijg.ts';
import type { DecodedFrame, FrameInput, PixelCodec } from './types.ts';

/** Huffman-coded DCT processes that libjpeg (and so sharp) decodes at 8 bits. */
const SHARP_SOF = new Set([0xc0, 0xc1, 0xc2]);

async function decodeWithSharp(data: Uint8Array, m: PixelModule, info: CodestreamInfo): Promise<DecodedFrame> {
  let out: { data: Buffer; info: OutputInfo };
  try {
    const image = sharp(data, { failOn: 'warning', limitInputPixels: m.rows * m.columns + 1 });
    // One component (MONOCHROME): libvips loads it as one 'b-w' band; asking for b-w output keeps
    // it so, with no colour conversion at all. (The old call, extractChannel(0), let sharp replicate
    // the band into sRGB and then copy band 0 back out: the same bytes, measured in bench/stages
    // (jpeg-extract vs jpeg-bw) and checked over every 8-bit level in jpeg-baseline.test.ts.)
    const pipeline = info.components === 1 ? image.toColourspace('b-w') : image.toColourspace('srgb');
    out = await pipeline.raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();
    throw new DicomError('CODEC_FAILED', `JPEG (sharp/libjpeg) decoder failed: ${msg}`, { cause: msg });
  }
  if (out.info.width !== m.columns || out.info.height !== m.rows || out.info.channels !== m.samplesPerPixel) {
    throw new DicomError(
      'DIMENSION_MISMATCH',
      `JPEG decoded to ${out.info.width}x${out.info.height}x${out.info.channels}; the header says ${m.columns}x${m.rows}x${m.samplesPerPixel}`,
    );
  }
  return {
    samples: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length),
    rows: m.rows,
    columns: m.columns,
    samplesPerPixel: m.samplesPerPixel,
    planar: false,
    // libjpeg converts YCbCr-coded colour to RGB itself.
    colourSpace: 'RGB',
    bitShift: 0,
  };
}

export const jpegBaselineCodec: PixelCodec = {
  family: 'jpeg-baseline',
  library: 'sharp (8-bit) / dcmjs-codecs IJG (12-bit)',
  async decode({ data: frame, module: m }: FrameInput): Promise<DecodedFrame> {
    const info = readJpegHeader(frame);
    checkAgainstHeader(info, m, 'JPEG');
    const data = assertEndMarker(frame, 'JPEG');
    if (info.precision <= 8 && info.sof !== undefined && SHARP_SOF.has(info.sof)) return decodeWithSharp(data, m, info);
    return decodeJpegIjg(data, m, info, 'JPEG (IJG)');
  },
};
