/**
 * Transfer syntax registry: every UID we can name (PS3.6 Annex A), and for the ones we decode,
 * which codec family handles the pixel data. decode.ts dispatches on `codec` only.
 */

export const TS = {
  ImplicitVRLittleEndian: '1.2.840.10008.1.2',
  ExplicitVRLittleEndian: '1.2.840.10008.1.2.1',
  DeflatedExplicitVRLittleEndian: '1.2.840.10008.1.2.1.99',
  ExplicitVRBigEndian: '1.2.840.10008.1.2.2',
  JPEGBaseline: '1.2.840.10008.1.2.4.50',
  JPEGExtended: '1.2.840.10008.1.2.4.51',
  JPEGLossless: '1.2.840.10008.1.2.4.57',
  JPEGLosslessSV1: '1.2.840.10008.1.2.4.70',
  JPEGLSLossless: '1.2.840.10008.1.2.4.80',
  JPEGLSNearLossless: '1.2.840.10008.1.2.4.81',
  JPEG2000Lossless: '1.2.840.10008.1.2.4.90',
  JPEG2000: '1.2.840.10008.1.2.4.91',
  RLELossless: '1.2.840.10008.1.2.5',
} as const;

/** Codec families; one module under codecs/ each. */
export type CodecFamily = 'native' | 'rle' | 'jpeg-baseline' | 'jpeg-lossless' | 'jpeg-ls' | 'jpeg2000';

export interface TransferSyntaxInfo {
  uid: string;
  name: string;
  /** Present only for syntaxes this module decodes. */
  codec?: CodecFamily;
  /** Only meaningful for native syntaxes (encapsulated ones always use explicit VR LE datasets). */
  littleEndian: boolean;
  lossy: boolean;
}

const entries: Array<[uid: string, name: string, codec: CodecFamily | undefined, lossy: boolean]> = [
  [TS.ImplicitVRLittleEndian, 'Implicit VR Little Endian', 'native', false],
  [TS.ExplicitVRLittleEndian, 'Explicit VR Little Endian', 'native', false],
  [TS.DeflatedExplicitVRLittleEndian, 'Deflated Explicit VR Little Endian', 'native', false],
  [TS.ExplicitVRBigEndian, 'Explicit VR Big Endian', 'native', false],
  [TS.JPEGBaseline, 'JPEG Baseline (Process 1)', 'jpeg-baseline', true],
  [TS.JPEGExtended, 'JPEG Extended (Process 2 & 4)', 'jpeg-baseline', true],
  ['1.2.840.10008.1.2.4.52', 'JPEG Extended (Process 3 & 5) (Retired)', undefined, true],
  ['1.2.840.10008.1.2.4.53', 'JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8) (Retired)', undefined, true],
  ['1.2.840.10008.1.2.4.54', 'JPEG Spectral Selection, Non-Hierarchical (Process 7 & 9) (Retired)', undefined, true],
  ['1.2.840.10008.1.2.4.55', 'JPEG Full Progression, Non-Hierarchical (Process 10 & 12) (Retired)', undefined, true],
  ['1.2.840.10008.1.2.4.56', 'JPEG Full Progression, Non-Hierarchical (Process 11 & 13) (Retired)', undefined, true],
  [TS.JPEGLossless, 'JPEG Lossless, Non-Hierarchical (Process 14)', 'jpeg-lossless', false],
  ['1.2.840.10008.1.2.4.58', 'JPEG Lossless, Non-Hierarchical (Process 15) (Retired)', undefined, false],
  ['1.2.840.10008.1.2.4.59', 'JPEG Extended, Hierarchical (Process 16 & 18) (Retired)', undefined, true],
  ['1.2.840.10008.1.2.4.60', 'JPEG Extended, Hierarchical (Process 17 & 19) (Retired)', undefined, true],
  ['1.2.840.10008.1.2.4.61', 'JPEG Spectral Selection, Hierarchical (Process 20 & 22) (Retired)', undefined, true],
  ['1.2.840.10008.1.2.4.62', 'JPEG Spectral Selection, Hierarchical (Process 21 & 23) (Retired)', undefined, true],
  ['1.2.840.10008.1.2.4.63', 'JPEG Full Progression, Hierarchical (Process 24 & 26) (Retired)', undefined, true],
  ['1.2.840.10008.1.2.4.64', 'JPEG Full Progression, Hierarchical (Process 25 & 27) (Retired)', undefined, true],
  ['1.2.840.10008.1.2.4.65', 'JPEG Lossless, Hierarchical (Process 28) (Retired)', undefined, false],
  ['1.2.840.10008.1.2.4.66', 'JPEG Lossless, Hierarchical (Process 29) (Retired)', undefined, false],
  [TS.JPEGLosslessSV1, 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])', 'jpeg-lossless', false],
  [TS.JPEGLSLossless, 'JPEG-LS Lossless Image Compression', 'jpeg-ls', false],
  [TS.JPEGLSNearLossless, 'JPEG-LS Lossy (Near-Lossless) Image Compression', 'jpeg-ls', true],
  [TS.JPEG2000Lossless, 'JPEG 2000 Image Compression (Lossless Only)', 'jpeg2000', false],
  [TS.JPEG2000, 'JPEG 2000 Image Compression', 'jpeg2000', true],
  ['1.2.840.10008.1.2.4.92', 'JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)', undefined, false],
  ['1.2.840.10008.1.2.4.93', 'JPEG 2000 Part 2 Multi-component Image Compression', undefined, true],
  ['1.2.840.10008.1.2.4.94', 'JPIP Referenced', undefined, false],
  ['1.2.840.10008.1.2.4.95', 'JPIP Referenced Deflate', undefined, false],
  ['1.2.840.10008.1.2.4.100', 'MPEG2 Main Profile / Main Level', undefined, true],
  ['1.2.840.10008.1.2.4.100.1', 'Fragmentable MPEG2 Main Profile / Main Level', undefined, true],
  ['1.2.840.10008.1.2.4.101', 'MPEG2 Main Profile / High Level', undefined, true],
  ['1.2.840.10008.1.2.4.101.1', 'Fragmentable MPEG2 Main Profile / High Level', undefined, true],
  ['1.2.840.10008.1.2.4.102', 'MPEG-4 AVC/H.264 High Profile / Level 4.1', undefined, true],
  ['1.2.840.10008.1.2.4.102.1', 'Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.1', undefined, true],
  ['1.2.840.10008.1.2.4.103', 'MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1', undefined, true],
  ['1.2.840.10008.1.2.4.103.1', 'Fragmentable MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1', undefined, true],
  ['1.2.840.10008.1.2.4.104', 'MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video', undefined, true],
  ['1.2.840.10008.1.2.4.104.1', 'Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video', undefined, true],
  ['1.2.840.10008.1.2.4.105', 'MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video', undefined, true],
  ['1.2.840.10008.1.2.4.105.1', 'Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video', undefined, true],
  ['1.2.840.10008.1.2.4.106', 'MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2', undefined, true],
  ['1.2.840.10008.1.2.4.106.1', 'Fragmentable MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2', undefined, true],
  ['1.2.840.10008.1.2.4.107', 'HEVC/H.265 Main Profile / Level 5.1', undefined, true],
  ['1.2.840.10008.1.2.4.108', 'HEVC/H.265 Main 10 Profile / Level 5.1', undefined, true],
  ['1.2.840.10008.1.2.4.110', 'JPEG XL Lossless', undefined, false],
  ['1.2.840.10008.1.2.4.111', 'JPEG XL JPEG Recompression', undefined, false],
  ['1.2.840.10008.1.2.4.112', 'JPEG XL', undefined, true],
  ['1.2.840.10008.1.2.4.201', 'High-Throughput JPEG 2000 Image Compression (Lossless Only)', undefined, false],
  ['1.2.840.10008.1.2.4.202', 'High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)', undefined, false],
  ['1.2.840.10008.1.2.4.203', 'High-Throughput JPEG 2000 Image Compression', undefined, true],
  ['1.2.840.10008.1.2.4.204', 'JPIP HTJ2K Referenced', undefined, false],
  ['1.2.840.10008.1.2.4.205', 'JPIP HTJ2K Referenced Deflate', undefined, false],
  ['1.2.840.10008.1.2.6.1', 'RFC 2557 MIME encapsulation (Retired)', undefined, false],
  ['1.2.840.10008.1.2.6.2', 'XML Encoding (Retired)', undefined, false],
  ['1.2.840.10008.1.2.7.1', 'SMPTE ST 2110-20 Uncompressed Progressive Active Video', undefined, false],
  ['1.2.840.10008.1.2.7.2', 'SMPTE ST 2110-20 Uncompressed Interlaced Active Video', undefined, false],
  ['1.2.840.10008.1.2.7.3', 'SMPTE ST 2110-30 PCM Digital Audio', undefined, false],
  [TS.RLELossless, 'RLE Lossless', 'rle', false],
  ['1.2.840.10008.1.2.8.1', 'Deflated Image Frame Compression', undefined, false],
];

const registry = new Map<string, TransferSyntaxInfo>(
  entries.map(([uid, name, codec, lossy]) => [uid, { uid, name, codec, littleEndian: uid !== TS.ExplicitVRBigEndian, lossy }]),
);

/** Registry entry, or a placeholder naming the UID as unknown (so messages can always name it). */
export function transferSyntaxInfo(uid: string): TransferSyntaxInfo {
  return registry.get(uid) ?? { uid, name: 'unknown transfer syntax', littleEndian: true, lossy: false };
}

export function isKnownTransferSyntax(uid: string): boolean {
  return registry.has(uid);
}

/** UIDs this module decodes, for documentation and for the service's capability listing. */
export function supportedTransferSyntaxes(): TransferSyntaxInfo[] {
  return [...registry.values()].filter((t) => t.codec !== undefined);
}
