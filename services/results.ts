import type { Mask } from '../core/mask.ts';
import { decodeMask, encodeMask, type RleFormat } from '../core/rle/index.ts';
import { DEFAULT_RLE_FORMAT, type SegmentationView, type StoredMask, type StoredResult } from './contract/segmentation.ts';

export { DEFAULT_RLE_FORMAT, type SegmentationView };

export function storedMaskToMask(m: StoredMask): Mask {
  return decodeMask(m.rle.counts, m.rle.format, m.rle.size[0], m.rle.size[1]);
}

/** Re-encodes the canonical stored RLE into `format` (decode + encode; cheap next to a network hop). */
export function viewOf(result: StoredResult, format: RleFormat, stored: boolean, decoded?: Mask[]): SegmentationView {
  return {
    ...result,
    masks: result.masks.map((m, i) => ({
      ...m,
      rle: {
        format,
        size: m.rle.size,
        counts: format === m.rle.format ? m.rle.counts : encodeMask(decoded?.[i] ?? storedMaskToMask(m), format),
      },
    })),
    stored,
  };
}
