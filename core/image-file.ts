import sharp from 'sharp';
import type { Metadata, OutputInfo } from 'sharp';
import { DEFAULT_MAX_PIXELS } from './dicom/decode.ts';
import type { DecodedImage } from './dicom/types.ts';
import { CodedError, registerError } from './errors.ts';
import { createMask, type Mask } from './mask.ts';

/**
 * PNG / TIFF / JPEG images and masks for image-mask-pair datasets (e.g. the LGG brain MRI set:
 * `x.tif` with `x_mask.tif`), decoded with sharp (libvips) into the same DecodedImage the DICOM
 * path produces, so preprocessing cannot tell them apart.
 */

export type ImageFileErrorCode = 'UNSUPPORTED_FORMAT' | 'UNREADABLE_IMAGE' | 'UNSUPPORTED_PIXEL_FORMAT' | 'TOO_LARGE';

/** `message` is one line; the service maps UNSUPPORTED_FORMAT -> 415, TOO_LARGE -> 413, the rest -> 422. */
const IMAGE_FILE_STATUS: Record<ImageFileErrorCode, number> = { UNSUPPORTED_FORMAT: 415, TOO_LARGE: 413, UNREADABLE_IMAGE: 422, UNSUPPORTED_PIXEL_FORMAT: 422 };

export class ImageFileError extends CodedError<ImageFileErrorCode> {
  constructor(code: ImageFileErrorCode, message: string) {
    super(code, message.replace(/[\r\n]+/g, ' '), IMAGE_FILE_STATUS[code]);
    this.name = 'ImageFileError';
  }
}
registerError(ImageFileError);

export type ImageFileFormat = 'PNG' | 'TIFF' | 'JPEG';

/** Sniff the container from its signature; libvips itself would also accept SVG, PDF, HEIF... which we do not want to parse. */
export function sniffImageFormat(b: Uint8Array): ImageFileFormat | null {
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return 'PNG';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'JPEG';
  if (b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && (b[2] === 0x2a || b[2] === 0x2b) && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && (b[3] === 0x2a || b[3] === 0x2b)))) return 'TIFF';
  return null;
}

export interface ImageFileOptions {
  /** Reject before decoding when width*height*pages exceeds this; default 64 Mi pixels (as DICOM). */
  maxPixels?: number;
}

interface RawPixels {
  format: ImageFileFormat;
  width: number;
  height: number;
  /** Bands in `data`, alpha already dropped: 1 (grey) or 3 (RGB). */
  channels: 1 | 3;
  bits: 8 | 16;
  bitsPerSample: number;
  pages: number;
  /** Interleaved samples, Uint8Array or Uint16Array. */
  data: Uint8Array | Uint16Array;
  /** Samples per pixel in `data` including a dropped alpha band. */
  stride: number;
}

async function decodeRaw(bytes: Uint8Array, options: ImageFileOptions = {}): Promise<RawPixels> {
  const format = sniffImageFormat(bytes);
  if (!format) throw new ImageFileError('UNSUPPORTED_FORMAT', 'not a PNG, TIFF or JPEG file');
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  // ignoreIcc: keep stored values (an embedded profile would otherwise be applied);
  // failOn 'error': corrupt or truncated data fails, harmless TIFF tag warnings do not.
  const open = () => sharp(bytes, { ignoreIcc: true, failOn: 'error', limitInputPixels: false, page: 0 });
  let meta: Metadata;
  try {
    meta = await open().metadata();
  } catch (e) {
    throw new ImageFileError('UNREADABLE_IMAGE', `unreadable ${format} file: ${(e as Error).message}`);
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  const pages = meta.pages ?? 1;
  if (width <= 0 || height <= 0) throw new ImageFileError('UNREADABLE_IMAGE', `${format} file has no image size`);
  if (width * height * pages > maxPixels) {
    throw new ImageFileError('TOO_LARGE', `${format} image ${width}x${height}${pages > 1 ? `x${pages} pages` : ''} exceeds ${maxPixels} pixels`);
  }
  if (meta.depth !== 'uchar' && meta.depth !== 'ushort') {
    throw new ImageFileError('UNSUPPORTED_PIXEL_FORMAT', `${format} sample format ${meta.depth ?? 'unknown'} is not supported; expected 8 or 16-bit unsigned`);
  }
  const bits = meta.depth === 'ushort' ? 16 : 8;
  const bands = meta.channels ?? 1;
  const grey = bands <= 2 && !meta.isPalette;
  const space = grey ? (bits === 16 ? 'grey16' : 'b-w') : bits === 16 ? 'rgb16' : 'srgb';
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await open().toColourspace(space).raw({ depth: bits === 16 ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new ImageFileError('UNREADABLE_IMAGE', `cannot decode ${format} pixels: ${(e as Error).message}`);
  }
  const { info } = out;
  if (info.width !== width || info.height !== height) throw new ImageFileError('UNREADABLE_IMAGE', `${format} decoded to ${info.width}x${info.height}, header says ${width}x${height}`);
  const stride = info.channels;
  if (stride !== 1 && stride < 3) throw new ImageFileError('UNSUPPORTED_PIXEL_FORMAT', `${format} decoded to ${stride} bands`);
  const data = bits === 16 ? new Uint16Array(out.data.buffer, out.data.byteOffset, out.data.byteLength / 2) : new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
  return { format, width, height, channels: stride === 1 ? 1 : 3, bits, bitsPerSample: meta.bitsPerSample ?? bits, pages, data, stride };
}

/**
 * Decode a PNG/TIFF/JPEG (8 or 16-bit, grey or RGB; alpha ignored; first page of a multi-page
 * TIFF) into a DecodedImage. RGB is reduced to BT.601 luma 0.299 R + 0.587 G + 0.114 B, as the
 * DICOM path does. No EXIF auto-rotation: masks are stored in the same pixel orientation.
 */
export async function decodeImageFile(bytes: Uint8Array, options: ImageFileOptions = {}): Promise<DecodedImage> {
  const raw = await decodeRaw(bytes, options);
  const n = raw.width * raw.height;
  const pixels = new Float32Array(n);
  const d = raw.data;
  if (raw.channels === 1) {
    for (let i = 0; i < n; i++) pixels[i] = d[i * raw.stride];
  } else {
    for (let i = 0, j = 0; i < n; i++, j += raw.stride) pixels[i] = 0.299 * d[j] + 0.587 * d[j + 1] + 0.114 * d[j + 2];
  }
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = pixels[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const bitsStored = raw.bitsPerSample > 0 && raw.bitsPerSample <= raw.bits ? raw.bitsPerSample : raw.bits;
  return {
    rows: raw.height,
    columns: raw.width,
    frame: 0,
    numberOfFrames: raw.pages,
    pixels,
    min,
    max,
    // A palette image arrives expanded to RGB by libvips.
    photometricInterpretation: raw.channels === 1 ? 'MONOCHROME2' : 'RGB',
    bitsAllocated: raw.bits,
    bitsStored,
    pixelRepresentation: 0,
    samplesPerPixel: raw.channels,
    transferSyntaxUid: '',
    transferSyntaxName: raw.format,
  };
}

/** Decode a mask image: any nonzero colour sample (alpha ignored) is foreground. */
export async function readMaskFile(bytes: Uint8Array, options: ImageFileOptions = {}): Promise<Mask> {
  const raw = await decodeRaw(bytes, options);
  const n = raw.width * raw.height;
  const out = new Uint8Array(n);
  const d = raw.data;
  if (raw.channels === 1) {
    for (let i = 0; i < n; i++) out[i] = d[i * raw.stride] !== 0 ? 1 : 0;
  } else {
    for (let i = 0, j = 0; i < n; i++, j += raw.stride) out[i] = d[j] !== 0 || d[j + 1] !== 0 || d[j + 2] !== 0 ? 1 : 0;
  }
  return createMask(raw.height, raw.width, out);
}
