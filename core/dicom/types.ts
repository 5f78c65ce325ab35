/** Raw integer samples and the table that maps each to its luminance (see DecodedImage.samples). */
export interface LutSamples {
  data: Uint8Array | Uint16Array;
  lut: Float32Array;
}

/** What the decoder hands to preprocessing: one frame, one channel, modality values. */
export interface DecodedImage {
  rows: number;
  columns: number;
  /** 0-based index of the decoded frame, and how many the object holds. */
  frame: number;
  numberOfFrames: number;
  /**
   * Row-major luminance after BitsStored masking, sign extension, Rescale Slope/Intercept and
   * MONOCHROME1 inversion (so larger is always brighter). Colour images are reduced to luma (BT.601).
   */
  pixels: Float32Array;
  /**
   * Present when every pixel value is one table lookup of one raw sample (monochrome, 8 or 16 bits
   * allocated): pixels[i] === samples.lut[samples.data[i]]. The decoder then makes `pixels` only when
   * it is first read, and preprocessing reads through the table instead: the float image of a 1024²
   * radiograph is 4 MiB of fresh memory per request, and filling it cost more than the JPEG decode.
   */
  samples?: LutSamples;
  /** Range of `pixels`, computed once because normalisation needs it. */
  min: number;
  max: number;
  photometricInterpretation: string;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: 0 | 1;
  samplesPerPixel: number;
  transferSyntaxUid: string;
  transferSyntaxName: string;
  /** First WindowCenter/WindowWidth pair in output units (after MONOCHROME1 inversion), if present. */
  window?: { center: number; width: number };
  /** Non-identifying metadata only. Never add patient attributes here: it is logged and returned. */
  sopInstanceUid?: string;
  modality?: string;
}

export interface DecodeOptions {
  /** 0-based frame to decode; default 0. */
  frame?: number;
  /** Reject before allocating when rows*columns*frames*samples exceeds this; default 64 Mi pixels. */
  maxPixels?: number;
  /**
   * Compressed frames larger than 1 Mi samples whose declared decoded size exceeds their encoded
   * size by more than this factor are refused (TOO_LARGE) before decoding; default 5000
   * (DEFAULT_MAX_COMPRESSION_RATIO, see decode.ts for the measurements). Infinity disables it.
   */
  maxCompressionRatio?: number;
}
