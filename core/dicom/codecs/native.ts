/**
 * Uncompressed pixel data (implicit/explicit VR little endian, explicit VR big endian, deflated:
 * after inflation the pixel bytes are plain). Views the file buffer without copying where byte
 * order and alignment allow.
 */
import { endianness } from 'node:os';
import { DicomError } from '../errors.ts';
import type { DecodedFrame, FrameInput, PixelCodec, SampleArray } from './types.ts';

const HOST_LE = endianness() === 'LE';

function swap16(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let i = 0; i + 1 < src.length; i += 2) {
    out[i] = src[i + 1];
    out[i + 1] = src[i];
  }
  return out;
}

function swap32(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let i = 0; i + 3 < src.length; i += 4) {
    out[i] = src[i + 3];
    out[i + 1] = src[i + 2];
    out[i + 2] = src[i + 1];
    out[i + 3] = src[i];
  }
  return out;
}

/** Typed view of `bytes` in host order; copies when the offset is misaligned or the order differs. */
function typedSamples(bytes: Uint8Array, bitsAllocated: number, littleEndian: boolean): SampleArray {
  if (bitsAllocated === 8) return bytes;
  const width = bitsAllocated / 8;
  let b = bytes;
  if (littleEndian !== HOST_LE) b = width === 2 ? swap16(bytes) : swap32(bytes);
  else if (b.byteOffset % width !== 0) b = b.slice();
  const n = b.length / width;
  return width === 2 ? new Uint16Array(b.buffer, b.byteOffset, n) : new Uint32Array(b.buffer, b.byteOffset, n);
}

/** Native YBR_FULL_422 keeps Y1 Y2 Cb Cr per pixel pair (PS3.3 C.7.6.3.1.2); expand to per-pixel Y Cb Cr. */
function expand422(src: SampleArray, rows: number, columns: number): SampleArray {
  const out = new (src.constructor as { new (n: number): SampleArray })(rows * columns * 3);
  let o = 0;
  for (let i = 0; i < src.length; i += 4) {
    const cb = src[i + 2];
    const cr = src[i + 3];
    out[o++] = src[i];
    out[o++] = cb;
    out[o++] = cr;
    out[o++] = src[i + 1];
    out[o++] = cb;
    out[o++] = cr;
  }
  return out;
}

export const nativeCodec: PixelCodec = {
  family: 'native',
  library: 'built-in (typed-array views)',
  async decode({ data, module: m, littleEndian, pixelDataVr }: FrameInput): Promise<DecodedFrame> {
    let bytes = data;
    // 8-bit data in an OW element of a big endian file is byte-swapped within each 16-bit word (PS3.5 8.1.1).
    if (m.bitsAllocated === 8 && !littleEndian && pixelDataVr === 'OW') bytes = swap16(bytes);
    let samples = typedSamples(bytes, m.bitsAllocated, littleEndian);
    if (m.photometricInterpretation === 'YBR_FULL_422') {
      if (m.columns % 2) throw new DicomError('UNSUPPORTED_PIXEL_FORMAT', `native YBR_FULL_422 needs an even number of columns, got ${m.columns}`);
      samples = expand422(samples, m.rows, m.columns);
    }
    return {
      samples,
      rows: m.rows,
      columns: m.columns,
      samplesPerPixel: m.samplesPerPixel,
      planar: m.samplesPerPixel === 3 && m.planarConfiguration === 1 && m.photometricInterpretation !== 'YBR_FULL_422',
      colourSpace: 'declared',
      bitShift: m.highBit + 1 - m.bitsStored,
    };
  },
};
