/** What a POST /segment query asks of the engine: one mapping for a single image and for series mode. */
import { parseModelRef } from '../../core/engine/repository.ts';
import type { SegmentQuery } from '../contract/segmentation.ts';

export function queryOptions(q: SegmentQuery) {
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
  };
}
