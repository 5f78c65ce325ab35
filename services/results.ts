import type { Mask } from '../core/mask.ts';
import { decodeMask, encodeMask, type RleFormat } from '../core/rle/index.ts';
import { DEFAULT_RLE_FORMAT, type SegmentationView, type StoredMask, type StoredResult } from './contract/segmentation.ts';
import type { MaskTask, MaskTaskResult, RleMask } from './segment/mask-work.ts';

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

/**
 * viewOf for reads (GET /segmentations/{id}): the re-encoding goes through `run` (mask-offload.ts), so
 * a large result is converted off the main thread.
 */
export async function viewOfStored(
  result: StoredResult,
  format: RleFormat,
  run: (t: MaskTask) => Promise<MaskTaskResult>,
): Promise<SegmentationView> {
  const r = await run({ op: 'reencode', format, masks: result.masks.map(rleMask) });
  if (r.op !== 'reencode') throw new Error('mask work answered the wrong task');
  return { ...result, masks: result.masks.map((m, i) => ({ ...m, rle: { format, size: m.rle.size, counts: r.counts[i]! } })), stored: true };
}

/** A stored mask as mask work takes it. */
export const rleMask = (m: StoredMask): RleMask => ({ counts: m.rle.counts, rows: m.rle.size[0], cols: m.rle.size[1] });
