/**
 * The segmentation records as they cross HTTP and the result store, composed from the core records
 * (core/segmentation/records.ts): a mask on the wire is its MaskFacts plus an RLE in place of the
 * pixels; a stored result is the model, image and timings records plus its id, dates, masks and Dice.
 * The store's types and the /segment and /segmentations responses are all z.infer of these.
 */
import { z } from 'zod';
import { ImageFactsSchema, MaskFactsSchema, ModelRefSchema, TimingsSchema } from '../../core/segmentation/records.ts';
import { MinAreaSchema, MinComponentAreaSchema, ThresholdSchema, TopThresholdSchema } from '../../core/segmentation/postprocessing.ts';
import { RLE_FORMATS } from '../../core/rle/index.ts';
import { booleanFromQuery, numberFromQuery } from './query.ts';

export const RleFormatSchema = z.enum(RLE_FORMATS as readonly ['kaggle', 'siim', 'coco', 'coco-compressed']).meta({
  description:
    'Encoding of a mask (all column-major, as their origins define them): `coco-compressed` (the pycocotools string, ' +
    '`mask.decode({"size": [rows, columns], "counts": s})`), `coco` (uncompressed counts array, starting with the background run), ' +
    '`kaggle` (1-based "start length" pairs), `siim` (SIIM-ACR pneumothorax relative runs, "-1" when empty).',
});

/** Default response encoding: compact, and what pycocotools' mask.decode reads directly. */
export const DEFAULT_RLE_FORMAT = 'coco-compressed' as const;

const RleSize = z.tuple([z.number().int().min(0), z.number().int().min(0)]).describe('[rows, columns] of the image (the COCO convention).');

/** A mask's RLE in any format, as responses carry it. */
export const RleSchema = z
  .object({
    format: RleFormatSchema,
    size: RleSize,
    counts: z
      .union([z.string(), z.array(z.number().int().min(0))])
      .describe('A string for coco-compressed, kaggle and siim; an integer array for coco.'),
  })
  .meta({ id: 'Rle' });

/** Masks are stored in one canonical RLE form and converted on read. */
export const StoredRleSchema = z.object({ format: z.literal(DEFAULT_RLE_FORMAT), size: RleSize, counts: z.string() });

/** MaskFacts with `rle` after the label (the order responses have always had). */
const { label, ...facts } = MaskFactsSchema.shape;
const maskWith = <R extends z.ZodType>(rle: R) => z.object({ label, rle, ...facts });

export const StoredMaskSchema = maskWith(StoredRleSchema);
export const MaskResultSchema = maskWith(RleSchema).meta({ id: 'MaskResult' });

export const DiceSchema = z
  .record(z.string(), z.number().min(0).max(1))
  .describe('Dice per label for which a ground truth was sent (1 when both masks are empty); absent when none was sent.');

const ImageInfoSchema = ImageFactsSchema.meta({ id: 'ImageInfo', description: 'Geometry and non-identifying identifiers only; never patient attributes.' });
const TimingsInfoSchema = TimingsSchema.meta({
  id: 'Timings',
  description: "Milliseconds. postprocessMs includes the service's RLE encoding and Dice; totalMs is the handler's wall time after the body arrived.",
});

/**
 * What the service keeps per segmentation: RLE + metadata, never the DICOM, never raw masks, never
 * patient attributes. The same record serves GET /segmentations/{id} (any RLE format) and the PNGs.
 */
export const StoredResultSchema = z.object({
  id: z.uuid(),
  createdAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
  model: ModelRefSchema,
  image: ImageInfoSchema,
  masks: z.array(StoredMaskSchema).describe("One per model label, in the model's label order."),
  dice: DiceSchema.optional(),
  timings: TimingsInfoSchema,
});

/** What both POST /segment and GET /segmentations/{id} return. */
export const SegmentationResultSchema = StoredResultSchema.extend({
  masks: z.array(MaskResultSchema).describe("One per model label, in the model's label order."),
  stored: z.boolean().describe('False when the result store was unreachable (the result cannot be fetched again).'),
}).meta({
  id: 'SegmentationResult',
  examples: [
    {
      id: '0b6a4f8e-2f0c-4a55-9d5c-5f3e0b7c1a22',
      createdAt: '2025-01-01T12:00:00.000Z',
      expiresAt: '2025-01-01T13:00:00.000Z',
      model: { name: 'lung', version: '1', executionProvider: 'cpu' },
      image: {
        rows: 256,
        columns: 256,
        frame: 0,
        numberOfFrames: 1,
        transferSyntax: { uid: '1.2.840.10008.1.2.1', name: 'Explicit VR Little Endian' },
        sopInstanceUid: '2.25.123456789012345678901234567890',
        modality: 'DX',
      },
      masks: [
        {
          label: 'lung',
          rle: { format: 'coco-compressed', size: [256, 256], counts: 'PPYo1f0Z>2N1O1N2N100O10000O1O2N1N3M3M4L[]e0' },
          area: 14211,
          bbox: [41, 38, 176, 170],
          empty: false,
          threshold: 0.5,
          minArea: 0,
        },
      ],
      dice: { lung: 0.9412 },
      timings: { decodeMs: 0.41, preprocessMs: 0.63, queueMs: 1.9, inferenceMs: 38.2, postprocessMs: 1.1, totalMs: 43.5 },
      stored: true,
    },
  ],
});

/** What an answer says about a DICOM SEG it made (segSummary in services/series/segment-instances.ts). */
const count = z.number().int().min(0);
export const SegSummarySchema = z
  .object({
    sopInstanceUid: z.string().describe("The SEG's SOP Instance UID."),
    seriesInstanceUid: z.string().describe("The SEG's own (new) Series Instance UID, in the source's study."),
    bytes: count.describe('Size of the Part 10 file.'),
    frames: count.describe('SEG frames (one per segment and source frame with foreground; at least one).'),
    segments: z.array(z.object({ number: count, label: z.string() })).describe('One per label (a softmax background is left out).'),
    location: z.string().optional().describe('Where the SEG can be fetched again (`GET /segmentations/{id}/seg.dcm`, id = the first result\'s); absent when it could not be stored.'),
  })
  .meta({ id: 'SegSummary' });

/** POST /segment's answer in series mode: every frame's result (the single-image record, unchanged) and the series' SEG. */
export const SeriesSegmentationSchema = z
  .object({
    model: ModelRefSchema,
    instances: count.describe('Image instances segmented (parts that are not images, e.g. a presentation state, are skipped).'),
    results: z
      .array(SegmentationResultSchema)
      .describe(
        "One per frame, in slice order (position along the slice normal, else InstanceNumber; a multi-frame instance's frames in frame order): each exactly what POST /segment answers for that instance and `frame`, stored under its own id.",
      ),
    seg: SegSummarySchema,
    timings: z
      .object({ segmentMs: z.number(), writeMs: z.number(), totalMs: z.number() })
      .describe('Milliseconds: all frames through the engine, writing the SEG, and the whole request after the body arrived.'),
  })
  .meta({ id: 'SeriesSegmentation' });

export type StoredMask = z.infer<typeof StoredMaskSchema>;
export type StoredResult = z.infer<typeof StoredResultSchema>;
export type SegmentationView = z.infer<typeof SegmentationResultSchema>;
export type SeriesSegmentation = z.infer<typeof SeriesSegmentationSchema>;

const rleFormatQuery = RleFormatSchema.default(DEFAULT_RLE_FORMAT);

export const SegmentQuerySchema = z.strictObject({
  model: z
    .string()
    .max(200)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*(:[0-9A-Za-z][0-9A-Za-z._-]*)?$/)
    .optional()
    .describe("Model `name` or `name:version`; default the server's default model."),
  rleFormat: rleFormatQuery,
  threshold: numberFromQuery(ThresholdSchema).optional().describe("Probability threshold for foreground; default the model's `postprocessing.threshold`."),
  minArea: numberFromQuery(MinAreaSchema.max(1_000_000_000))
    .optional()
    .describe("A mask with fewer foreground pixels (at the image's own resolution) is reported empty; default the model's `postprocessing.minArea`."),
  topThreshold: numberFromQuery(TopThresholdSchema)
    .optional()
    .describe("SIIM triplet gate: keep a mask only when at least `minArea` pixels have p > topThreshold (then `threshold` draws it); default the model's."),
  minComponentArea: numberFromQuery(MinComponentAreaSchema.max(1_000_000_000))
    .optional()
    .describe("Remove connected components (8-connected) smaller than this many pixels; default the model's."),
  keepLargest: booleanFromQuery().optional().describe("Keep only the largest connected component of each mask; default the model's."),
  tta: booleanFromQuery().optional().describe('Test-time augmentation, averaging the prediction with that of the horizontally flipped image (default false).'),
  preview: booleanFromQuery()
    .optional()
    .describe(
      'Keep an 8-bit preview of the image (longer side at most PREVIEW_MAX_SIDE) beside the result, for `GET /segmentations/{id}/overlay.png` (default false: it costs CPU on every request and ~64 KiB of store per result). 400 when the server keeps none (PREVIEW_MAX_SIDE=0).',
    ),
  frame: numberFromQuery(z.number().int().min(0).max(1_000_000)).optional().describe('0-based frame of a multi-frame object (default 0).'),
  frames: z
    .enum(['all'])
    .optional()
    .describe('`all`: series mode for one (multi-frame) DICOM body: every frame is segmented and the answer is a SeriesSegmentation (or, with Accept: application/dicom, one SEG). Not with `frame`.'),
});
export type SegmentQuery = z.infer<typeof SegmentQuerySchema>;

export const ResultParamsSchema = z.object({
  // Anything that is not one of our ids cannot exist: the handler answers 404 rather than 400.
  id: z.string().max(128).describe('The `id` POST /segment returned.'),
});
export const ResultQuerySchema = z.strictObject({ rleFormat: rleFormatQuery });
export const LabelQuerySchema = z.strictObject({ label: z.string().min(1).max(128).optional().describe("Render only this label's mask.") });
export const MaskPngQuerySchema = LabelQuerySchema.extend({
  as: z
    .enum(['binary', 'labelmap'])
    .default('binary')
    .describe("binary: 255 where a mask is set; labelmap: each pixel holds its label's 1-based position in the result's masks (0 none), as multi-class training data stores it."),
});

/** Documentation of POST /segment's body (read by the handler itself, not validated by a schema). */
export const SegmentFormSchema = z
  .object({
    file: z.string().meta({ contentMediaType: 'application/dicom' }).describe('The DICOM Part 10 file.'),
    groundTruth: z.string().optional().describe("RLE of the truth for the model's first label, at the image's rows x columns."),
    groundTruthFormat: RleFormatSchema.optional().describe('Format of the ground truth fields; default the `rleFormat` query parameter.'),
  })
  .catchall(z.string().describe('groundTruth.<label>: RLE of the truth for that label (multi-label models).'));
