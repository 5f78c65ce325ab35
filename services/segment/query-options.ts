/** What a POST /segment query asks of the engine: one mapping for a single image and for series mode. */
import { parseModelRef } from '../../core/engine/repository.ts';
import type { SegmentQuery } from '../contract/segmentation.ts';
import { Problem } from '../problem.ts';

/** `previewMaxSide`: the server's PREVIEW_MAX_SIDE (0: it keeps no previews, and `preview=true` is refused). */
export function queryOptions(q: SegmentQuery, previewMaxSide: number) {
  if (q.preview && previewMaxSide <= 0) {
    throw new Problem('bad-request', 'preview=true, but this server keeps no previews (PREVIEW_MAX_SIDE=0)', { code: 'VALIDATION' });
  }
  const ref: { name?: string; version?: string } = q.model ? parseModelRef(q.model) : {};
  return {
    model: ref.name,
    version: ref.version,
    threshold: q.threshold,
    minArea: q.minArea,
    topThreshold: q.topThreshold,
    minComponentArea: q.minComponentArea,
    keepLargest: q.keepLargest,
    tta: q.tta,
    // Made only when asked: the preview is the one product of a request nobody may read.
    preview: q.preview ? { maxSide: previewMaxSide } : undefined,
  };
}
