/**
 * The records a segmentation produces, declared once. The engine's result, the worker's reply, the
 * store's record and the HTTP contract are all built from these schemas (the HTTP layer composes them
 * with its own fields, e.g. an RLE in place of the raw mask), so a field added here reaches every layer
 * and a field renamed in one layer cannot drift from the others.
 */
import { z } from 'zod';
import type { Mask } from '../mask.ts';

const count = z.number().int().min(0);

/** [x, y, width, height] of the foreground in pixels, or null when the mask is empty. */
export const BBoxSchema = z.tuple([count, count, count, count]).nullable();
export type BBox = z.infer<typeof BBoxSchema>;

/** What is reported for one label's mask besides its pixels. */
export const MaskFactsSchema = z.object({
  label: z.string().describe('The output channel this mask comes from (model.json labels).'),
  area: count.describe('Foreground pixels at the original resolution, after the min-area gate.'),
  bbox: BBoxSchema.describe('[x, y, width, height] of the foreground, or null when empty.'),
  empty: z.boolean().describe('True when no foreground remains (area 0).'),
  threshold: z.number().nullable().describe('Probability threshold applied: foreground where p > threshold; null for softmax models, where the most probable class wins.'),
  minArea: count.describe('Masks with fewer foreground pixels than this were reported empty (with topThreshold: fewer pixels above it).'),
  topThreshold: z.number().optional().describe('Present when the triplet gate was applied: its top threshold.'),
  minComponentArea: count.optional().describe('Present when connected components smaller than this were removed.'),
  keepLargest: z.boolean().optional().describe('Present (true) when only the largest connected component was kept.'),
});
export type MaskFacts = z.infer<typeof MaskFactsSchema>;

/** A mask with its facts, as the processor returns it. */
export interface SegmentedMask extends MaskFacts {
  mask: Mask;
}

/** Non-identifying facts about the image that was segmented (never patient attributes). */
export const ImageFactsSchema = z.object({
  rows: z.number().int().positive(),
  columns: z.number().int().positive(),
  frame: count.describe('0-based frame that was segmented.'),
  numberOfFrames: z.number().int().positive(),
  transferSyntax: z.object({ uid: z.string(), name: z.string() }),
  sopInstanceUid: z.string().nullable(),
  modality: z.string().nullable(),
});
export type ImageFacts = z.infer<typeof ImageFactsSchema>;

export const ExecutionProviderSchema = z.enum(['cpu', 'cuda']);
export type ExecutionProvider = z.infer<typeof ExecutionProviderSchema>;

/** Which model version produced a result, and where it ran. */
export const ModelRefSchema = z.object({ name: z.string(), version: z.string(), executionProvider: ExecutionProviderSchema });
export type ModelRef = z.infer<typeof ModelRefSchema>;

const ms = z.number().min(0);
/** Where one request's time went, in milliseconds. */
export const TimingsSchema = z.object({
  decodeMs: ms,
  preprocessMs: ms,
  queueMs: ms,
  inferenceMs: ms,
  postprocessMs: ms,
  totalMs: ms,
});
export type Timings = z.infer<typeof TimingsSchema>;

/** The image windowed to 8-bit grey and shrunk so its longer side is at most a requested size. */
export interface Preview {
  width: number;
  height: number;
  /** Row-major, one byte per pixel. */
  data: Uint8Array;
}

/** One image's segmentation, as the engine returns it to the service and the batch CLI. */
export interface SegmentResult {
  model: ModelRef;
  image: ImageFacts;
  masks: SegmentedMask[];
  /** Present when the request asked for one. */
  preview?: Preview;
  timings: Timings;
}
