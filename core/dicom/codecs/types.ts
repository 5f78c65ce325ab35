import type { PixelModule } from '../pixel-module.ts';

/** Integer samples as a codec produced them, before BitsStored masking and sign extension. */
export type SampleArray = Uint8Array | Uint16Array | Int16Array | Uint32Array | Int32Array;

export interface DecodedFrame {
  samples: SampleArray;
  rows: number;
  columns: number;
  samplesPerPixel: number;
  /** true: all of sample 0, then sample 1...; false: interleaved per pixel. Set by the codec, not the header. */
  planar: boolean;
  /**
   * For 3-sample frames: 'RGB' when the decoder already converted to RGB (e.g. JPEG YCbCr -> RGB),
   * 'declared' when the samples are in the colour space the header's PhotometricInterpretation names.
   */
  colourSpace: 'RGB' | 'declared';
  /** Native data keeps stored bits at HighBit; compressed codecs hand back right-aligned values. */
  bitShift: number;
}

export interface FrameInput {
  /** Native: the frame's bytes. Encapsulated: the frame's codestream. */
  data: Uint8Array;
  module: PixelModule;
  transferSyntaxUid: string;
  /** Byte order of native data. */
  littleEndian: boolean;
  /** VR of Pixel Data (OB/OW) where the encoding says; only matters for 8-bit big endian data. */
  pixelDataVr?: string;
}

/** One codec family (the pixel-handler idea of pydicom): decodes a frame of the syntaxes it is registered for. */
export interface PixelCodec {
  readonly family: string;
  /** Which library does the work, for the README and error messages. */
  readonly library: string;
  decode(input: FrameInput): Promise<DecodedFrame>;
}
