import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { parseModelRef } from '../../core/engine/repository.ts';
import type { SegmentResult } from '../../core/engine/index.ts';
import type { Mask } from '../../core/mask.ts';
import { dice } from '../../core/metrics/index.ts';
import { decodeMask, encodeMask, isRleFormat, RLE_FORMATS, type RleFormat } from '../../core/rle/index.ts';
import { Problem } from '../problem.ts';
import { DEFAULT_RLE_FORMAT, viewOf } from '../results.ts';
import type { StoredResult } from '../store/types.ts';

export interface SegmentQuery {
  model?: string;
  rleFormat: RleFormat;
  threshold?: number;
  minArea?: number;
  tta?: boolean;
  frame?: number;
}

export const segmentQuerySchema = {
  type: 'object',
  properties: {
    model: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*(:[0-9A-Za-z][0-9A-Za-z._-]*)?$', maxLength: 200 },
    rleFormat: { type: 'string', enum: [...RLE_FORMATS], default: DEFAULT_RLE_FORMAT },
    threshold: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
    minArea: { type: 'integer', minimum: 0, maximum: 1_000_000_000 },
    tta: { type: 'boolean' },
    frame: { type: 'integer', minimum: 0, maximum: 1_000_000 },
  },
  additionalProperties: false,
} as const;

/** A ground truth as sent: RLE counts for one label, decoded once the image size is known. */
interface GroundTruth {
  /** null = the `groundTruth` field, which means the model's first (for single-label models: only) label. */
  label: string | null;
  counts: string;
}

const GT_FIELD = /^groundTruth(?:\.(.+))?$/;

/** Reads a multipart body: exactly one `file` part, optional ground-truth fields, nothing else. */
async function readMultipart(request: FastifyRequest, limit: number) {
  let dicom: Buffer | undefined;
  const truths: GroundTruth[] = [];
  let truthFormat: string | undefined;
  for await (const part of request.parts({ limits: { fileSize: limit, fieldSize: limit, files: 1, fields: 64, parts: 66 } })) {
    if (part.type === 'file') {
      if (part.fieldname !== 'file') throw new Problem('bad-multipart', `unexpected file part ${JSON.stringify(part.fieldname)}; send the DICOM as "file"`);
      dicom = await part.toBuffer();
      continue;
    }
    if (part.fieldname === 'file') throw new Problem('bad-multipart', 'send "file" as a file part (with a filename), not a text field');
    const value = typeof part.value === 'string' ? part.value : String(part.value);
    if (part.fieldname === 'groundTruthFormat') {
      truthFormat = value.trim();
      continue;
    }
    const m = GT_FIELD.exec(part.fieldname);
    if (!m) {
      throw new Problem('bad-multipart', `unexpected field ${JSON.stringify(part.fieldname)}; allowed: file, groundTruth, groundTruth.<label>, groundTruthFormat`);
    }
    const label = m[1] ?? null;
    if (truths.some((t) => t.label === label)) throw new Problem('bad-multipart', `field ${part.fieldname} sent twice`);
    truths.push({ label, counts: value.trim() });
  }
  if (!dicom) throw new Problem('bad-multipart', 'multipart body has no "file" part with the DICOM');
  if (truthFormat !== undefined && !isRleFormat(truthFormat)) {
    throw new Problem('bad-request', `groundTruthFormat must be one of ${RLE_FORMATS.join(', ')}, got ${JSON.stringify(truthFormat)}`);
  }
  return { dicom, truths, truthFormat: truthFormat as RleFormat | undefined };
}

/** 'coco' counts travel in a text field as a JSON array or whitespace/comma separated integers. */
function parseCounts(counts: string, format: RleFormat): string | number[] {
  if (format !== 'coco') return counts;
  const text = counts.startsWith('[') ? counts.slice(1, counts.endsWith(']') ? -1 : undefined) : counts;
  const parts = text.split(/[\s,]+/).filter((s) => s.length > 0);
  const out = parts.map(Number);
  if (out.some((n) => !Number.isInteger(n))) throw new Problem('bad-rle', 'coco ground truth must be a list of integers (JSON array or space separated)', { code: 'BAD_RLE' });
  return out;
}

/** Decodes every ground truth at the image size and pairs it with the predicted mask of its label. */
function diceScores(result: SegmentResult, truths: GroundTruth[], format: RleFormat): Record<string, number> {
  const out: Record<string, number> = {};
  const labels = result.masks.map((m) => m.label);
  for (const t of truths) {
    const label = t.label ?? labels[0]!;
    const pred = result.masks.find((m) => m.label === label);
    if (!pred) throw new Problem('bad-request', `ground truth for unknown label ${JSON.stringify(label)}; model labels: ${labels.join(', ')}`);
    let truth: Mask;
    try {
      truth = decodeMask(parseCounts(t.counts, format), format, result.image.rows, result.image.columns);
    } catch (e) {
      if (e instanceof Problem) throw e;
      throw new Problem('bad-rle', `ground truth${t.label ? ` for ${t.label}` : ''} (${format}, ${result.image.rows}x${result.image.columns}): ${(e as Error).message}`, {
        code: 'BAD_RLE',
      });
    }
    out[label] = dice(pred.mask, truth);
  }
  return out;
}

export default async function segmentRoutes(app: FastifyInstance): Promise<void> {
  const limit = app.config.bodyLimitBytes;
  // Only DICOM and multipart reach POST /segment; JSON, forms etc. are refused by Fastify with 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/dicom', 'application/octet-stream'], { parseAs: 'buffer', bodyLimit: limit }, (_req, body, done) => done(null, body));
  await app.register(multipart, { limits: { fileSize: limit, fieldSize: limit } });

  app.post('/segment', { schema: { querystring: segmentQuerySchema } }, async (request, reply) => {
    const t0 = performance.now();
    const q = request.query as SegmentQuery;
    let dicom: Buffer;
    let truths: GroundTruth[] = [];
    let truthFormat: RleFormat = q.rleFormat;
    if (request.isMultipart()) {
      const mp = await readMultipart(request, limit);
      dicom = mp.dicom;
      truths = mp.truths;
      truthFormat = mp.truthFormat ?? q.rleFormat;
    } else if (Buffer.isBuffer(request.body)) {
      dicom = request.body;
    } else {
      throw new Problem('unsupported-media-type', 'send the DICOM as the body with Content-Type: application/dicom, or as multipart/form-data field "file"');
    }

    // Read before the engine takes the buffer.
    const bytes = dicom.length;
    const engine = app.lifecycle.requireEngine();
    const ref: { name?: string; version?: string } = q.model ? parseModelRef(q.model) : {};
    const info = ref.name ? engine.model(ref.name, ref.version) : engine.defaultModel();
    // Catch a ground truth for a label the model lacks before spending an inference on it.
    if (info) {
      for (const t of truths) {
        if (t.label !== null && !info.manifest.labels.includes(t.label)) {
          throw new Problem('bad-request', `ground truth for unknown label ${JSON.stringify(t.label)}; model ${info.name} labels: ${info.manifest.labels.join(', ')}`);
        }
      }
    }

    const maxSide = app.config.previewMaxSide;
    let result: SegmentResult;
    try {
      result = await engine.segment({
        dicom,
        model: ref.name,
        version: ref.version,
        threshold: q.threshold,
        minArea: q.minArea,
        tta: q.tta,
        frame: q.frame,
        transferDicom: true,
        // Made in the inference worker from the image it decodes for the model (one decode per request).
        preview: maxSide > 0 ? { maxSide } : undefined,
      });
      app.metrics.segmentation(result.model.name, 'ok');
    } catch (e) {
      app.metrics.segmentation(ref.name ?? info?.name ?? 'default', 'error');
      throw e;
    }
    const t1 = performance.now();
    const scores = truths.length > 0 ? diceScores(result, truths, truthFormat) : undefined;

    const now = new Date();
    const ttl = app.config.resultTtlSeconds;
    const stored: StoredResult = {
      id: randomUUID(),
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + ttl * 1000).toISOString(),
      model: result.model,
      image: {
        rows: result.image.rows,
        columns: result.image.columns,
        frame: result.image.frame,
        numberOfFrames: result.image.numberOfFrames,
        transferSyntax: { uid: result.image.transferSyntaxUid, name: result.image.transferSyntaxName },
        sopInstanceUid: result.image.sopInstanceUid,
        modality: result.image.modality,
      },
      masks: result.masks.map((m) => ({
        label: m.label,
        rle: { format: 'coco-compressed', size: [m.mask.rows, m.mask.cols], counts: encodeMask(m.mask, 'coco-compressed') },
        area: m.area,
        bbox: m.bbox,
        empty: m.empty,
        threshold: m.threshold,
        minArea: m.minArea,
      })),
      ...(scores ? { dice: scores } : {}),
      timings: {
        decodeMs: round(result.timings.decodeMs),
        preprocessMs: round(result.timings.preprocessMs),
        queueMs: round(result.timings.queueMs),
        inferenceMs: round(result.timings.inferenceMs),
        // The engine's postprocessing plus this handler's Dice and RLE encoding.
        postprocessMs: 0,
        totalMs: 0,
      },
    };
    stored.timings.postprocessMs = round(result.timings.postprocessMs + (performance.now() - t1));
    stored.timings.totalMs = round(performance.now() - t0);

    let saved = true;
    try {
      await app.store.put(stored, result.preview);
    } catch (err) {
      // The masks are in this response; losing the stored copy must not cost the caller the inference.
      saved = false;
      request.log.error({ err: { message: (err as Error).message } }, 'result not stored; it cannot be fetched by id later');
    }
    request.log.info(
      {
        resultId: stored.id,
        model: `${result.model.name}:${result.model.version}`,
        provider: result.model.executionProvider,
        sopInstanceUid: result.image.sopInstanceUid,
        transferSyntax: result.image.transferSyntaxUid,
        size: `${result.image.rows}x${result.image.columns}`,
        bytes,
        totalMs: stored.timings.totalMs,
      },
      'segmented',
    );
    if (saved) reply.header('content-location', `/segmentations/${stored.id}`);
    return viewOf(stored, q.rleFormat, saved, result.masks.map((m) => m.mask));
  });
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
