/** The stored record of one segmentation, built from the engine's result. */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { encodeMask } from '../../core/rle/index.ts';
import type { SegmentResult } from '../../core/segmentation/records.ts';
import { DEFAULT_RLE_FORMAT, type StoredResult } from '../contract/segmentation.ts';

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/**
 * The engine's result as stored: masks in the canonical RLE, dates from `ttlSeconds`, and timings
 * where postprocessMs adds this process's Dice and RLE work (since `engineDoneAt`) and totalMs runs
 * from `receivedAt`.
 */
export function storedRecord(
  result: SegmentResult,
  opts: { ttlSeconds: number; dice: Record<string, number> | undefined; receivedAt: number; engineDoneAt: number },
): StoredResult {
  const now = new Date();
  const masks = result.masks.map(({ mask, label, ...facts }) => ({
    label,
    rle: { format: DEFAULT_RLE_FORMAT, size: [mask.rows, mask.cols] as [number, number], counts: encodeMask(mask, DEFAULT_RLE_FORMAT) },
    ...facts,
  }));
  const t = result.timings;
  const afterEngine = performance.now() - opts.engineDoneAt;
  return {
    id: randomUUID(),
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + opts.ttlSeconds * 1000).toISOString(),
    model: result.model,
    image: result.image,
    masks,
    ...(opts.dice ? { dice: opts.dice } : {}),
    timings: {
      decodeMs: round(t.decodeMs),
      preprocessMs: round(t.preprocessMs),
      queueMs: round(t.queueMs),
      inferenceMs: round(t.inferenceMs),
      postprocessMs: round(t.postprocessMs + afterEngine),
      totalMs: round(performance.now() - opts.receivedAt),
    },
  };
}
