/**
 * decodeDicom: bytes -> one frame of modality-valued luminance (DecodedImage). The steps, each
 * with its own typed failure:
 *   1. file layout and transfer syntax (NOT_DICOM, TRUNCATED, UNSUPPORTED_TRANSFER_SYNTAX)
 *   2. dataset parse (NOT_DICOM, TRUNCATED, TOO_LARGE for deflate bombs)
 *   3. Image Pixel module from the header (NO_PIXEL_DATA, UNSUPPORTED_PIXEL_FORMAT, TOO_LARGE)
 *   4. the frame's bytes (FRAME_OUT_OF_RANGE, DIMENSION_MISMATCH; TOO_LARGE for a compressed frame
 *      declaring over 5000x its own size: the decompression-ratio guard)
 *   5. the codec family's decoder (CODEC_FAILED, DIMENSION_MISMATCH)
 *   6. masking, sign, rescale, MONOCHROME1, luma, min/max (pixels.ts)
 */
import { CODECS } from './codecs/index.ts';
import { DicomError } from './errors.ts';
import { encapsulatedFrame, nativeFrame } from './frames.ts';
import { describeThrown, parseDataset, readTransferSyntaxOnly } from './parse.ts';
import { readPixelModule, type PixelModule } from './pixel-module.ts';
import { inversionSum, toLuminance } from './pixels.ts';
import { transferSyntaxInfo } from './transfer-syntax.ts';
import type { DecodedImage, DecodeOptions } from './types.ts';

export const DEFAULT_MAX_PIXELS = 64 * 1024 * 1024;
/**
 * Largest declared decoded size / encoded size accepted for one compressed frame (a decompression
 * bomb guard). Measured here with dcmtk / OpenJPEG on 2048x2048 images: content compresses ~5-30:1
 * lossless when the background carries detector noise; with an exactly-zero background and content
 * on 0.8 % of the area, up to 470:1 lossless (JPEG-LS) and 790:1 near-lossless (JPEG-LS, 12-bit).
 * RLE cannot exceed 64:1 (PackBits: 2 bytes per 128) nor JPEG Baseline ~256:1 (2 bits per 8x8 block).
 * A blank JPEG-LS or JPEG 2000 frame is 150-600 bytes whatever its size: 13,000-54,000:1 at
 * 2048x2048, and ~106,000:1 for the red team's 632-byte file declaring 8192x8192 (8.5 s of decoding).
 * 5000:1 keeps a 6x margin over the most compressible content measured.
 */
export const DEFAULT_MAX_COMPRESSION_RATIO = 5000;
/**
 * Frames of at most this many samples (rows x columns x samples per pixel) skip the ratio guard, so a
 * blank image up to 1024x1024 still decodes; decoding one costs at most ~0.2-0.5 s (blank JPEG 2000).
 */
export const COMPRESSION_RATIO_MIN_SAMPLES = 1024 * 1024;
/** Bytes a deflated dataset may hold beyond its pixels (non-pixel attributes, icons, private data). */
const INFLATE_HEADER_ALLOWANCE = 16 * 1024 * 1024;

/** Pixel Data tags: only (7FE0,0010) is decoded; the float variants are named in the error. */
const FLOAT_PIXEL_DATA = ['x7fe00008', 'x7fe00009'];

function text(ds: { string(tag: string): string | undefined }, tag: string): string | undefined {
  const v = ds.string(tag)?.replace(/\0/g, '').trim();
  return v ? v : undefined;
}

/** Refuses a compressed frame whose header declares far more pixels than its bytes can plausibly hold. */
function checkCompressionRatio(encodedBytes: number, m: PixelModule, maxRatio: number): void {
  const samples = m.rows * m.columns * m.samplesPerPixel;
  if (samples <= COMPRESSION_RATIO_MIN_SAMPLES) return;
  const decodedBytes = samples * (m.bitsAllocated / 8);
  const ratio = decodedBytes / Math.max(1, encodedBytes);
  if (ratio > maxRatio) {
    throw new DicomError(
      'TOO_LARGE',
      `compressed frame of ${encodedBytes} bytes declares ${m.columns}x${m.rows}x${m.samplesPerPixel} samples (${decodedBytes} bytes), a ${Math.round(ratio)}:1 ratio over the limit of ${maxRatio}:1 (a decompression bomb, or a blank image)`,
      { encodedBytes, decodedBytes, ratio, maxCompressionRatio: maxRatio },
    );
  }
}

export async function decodeDicom(bytes: Uint8Array, opts: DecodeOptions = {}): Promise<DecodedImage> {
  if (!(bytes instanceof Uint8Array)) throw new DicomError('NOT_DICOM', 'input is not a byte array');
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(maxPixels > 0)) throw new RangeError(`decodeDicom: maxPixels must be a positive number, got ${maxPixels}`);
  if (opts.maxCompressionRatio !== undefined && !(opts.maxCompressionRatio > 0)) {
    throw new RangeError(`decodeDicom: maxCompressionRatio must be a positive number (Infinity disables the guard), got ${opts.maxCompressionRatio}`);
  }
  const frameIndex = opts.frame ?? 0;

  const head = readTransferSyntaxOnly(bytes);
  const ts = transferSyntaxInfo(head.ts);
  if (!ts.codec) {
    throw new DicomError('UNSUPPORTED_TRANSFER_SYNTAX', `transfer syntax ${ts.uid} (${ts.name}) is not supported`, {
      transferSyntaxUid: ts.uid,
      transferSyntaxName: ts.name,
    });
  }

  // Inflated data can hold at most the pixel budget at 4 bytes/sample plus a header allowance.
  const { dataSet } = parseDataset(bytes, head, maxPixels * 4 + INFLATE_HEADER_ALLOWANCE);
  const pixelData = dataSet.elements.x7fe00010;
  if (!pixelData) {
    const sopClass = text(dataSet, 'x00080016');
    const other = FLOAT_PIXEL_DATA.find((t) => dataSet.elements[t]);
    throw new DicomError(
      other ? 'UNSUPPORTED_PIXEL_FORMAT' : 'NO_PIXEL_DATA',
      other
        ? `object holds ${other === 'x7fe00008' ? 'Float' : 'Double Float'} Pixel Data, which is not supported`
        : `object has no Pixel Data (7FE0,0010)${sopClass ? `; SOP Class ${sopClass}` : ''}`,
      { sopClassUid: sopClass },
    );
  }
  if (pixelData.length === 0 && !pixelData.hadUndefinedLength) throw new DicomError('NO_PIXEL_DATA', 'Pixel Data (7FE0,0010) is empty');

  const m = readPixelModule(dataSet, maxPixels);
  if (!Number.isInteger(frameIndex) || frameIndex < 0 || frameIndex >= m.numberOfFrames) {
    throw new DicomError('FRAME_OUT_OF_RANGE', `frame ${frameIndex} requested; the object has ${m.numberOfFrames} frame(s) (0-based)`, {
      frame: frameIndex,
      numberOfFrames: m.numberOfFrames,
    });
  }

  const native = ts.codec === 'native';
  const data = native ? nativeFrame(dataSet, pixelData, m, frameIndex) : encapsulatedFrame(dataSet, pixelData, m, frameIndex);
  if (!native) checkCompressionRatio(data.length, m, opts.maxCompressionRatio ?? DEFAULT_MAX_COMPRESSION_RATIO);
  const codec = CODECS[ts.codec];
  let frame;
  try {
    frame = await codec.decode({ data, module: m, transferSyntaxUid: ts.uid, littleEndian: ts.littleEndian, pixelDataVr: pixelData.vr });
  } catch (e) {
    if (e instanceof DicomError) throw e;
    // Codecs wrap their libraries; anything else reaching here is still never allowed out raw.
    throw new DicomError('CODEC_FAILED', `${ts.name} (${codec.library}) failed: ${describeThrown(e).replace(/\s+/g, ' ')}`);
  }
  const lum = toLuminance(frame, m);
  if (lum.samples && lum.samples.data.buffer === bytes.buffer) {
    // Native samples are a view of the caller's bytes, which it may reuse: the image keeps a copy.
    lum.samples.data = lum.samples.data.slice();
  }

  const image = {
    rows: m.rows,
    columns: m.columns,
    frame: frameIndex,
    numberOfFrames: m.numberOfFrames,
    min: lum.min,
    max: lum.max,
    photometricInterpretation: m.photometricInterpretation,
    bitsAllocated: m.bitsAllocated,
    bitsStored: m.bitsStored,
    pixelRepresentation: m.pixelRepresentation,
    samplesPerPixel: m.samplesPerPixel,
    transferSyntaxUid: ts.uid,
    transferSyntaxName: ts.name,
  } as DecodedImage;
  // `pixels` as toLuminance made it: a value, or (table samples) a getter that makes it once.
  Object.defineProperty(image, 'pixels', { ...Object.getOwnPropertyDescriptor(lum, 'pixels')!, enumerable: true });
  if (lum.samples) image.samples = lum.samples;
  if (m.window) {
    const inv = inversionSum(m);
    image.window = { center: inv === undefined ? m.window.center : inv - m.window.center, width: m.window.width };
  }
  const sop = text(dataSet, 'x00080018');
  if (sop) image.sopInstanceUid = sop;
  const modality = text(dataSet, 'x00080060');
  if (modality) image.modality = modality;
  return image;
}
