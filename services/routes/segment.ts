import { performance } from 'node:perf_hooks';
import multipart from '@fastify/multipart';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { SegmentResult } from '../../core/segmentation/records.ts';
import { TAGS } from '../contract/openapi.ts';
import { guarded, Problems } from '../contract/problem.ts';
import { SegmentationResultSchema, SegmentFormSchema, SegmentQuerySchema, SeriesSegmentationSchema } from '../contract/segmentation.ts';
import { viewOf } from '../results.ts';
import { readSegmentBody } from '../segment/body.ts';
import { checkTruthLabels, diceScores } from '../segment/ground-truth.ts';
import { queryOptions } from '../segment/query-options.ts';
import { storedRecord } from '../segment/record.ts';
import { SERIES_MEDIA_TYPE, segmentSeriesRequest, seriesInstances } from '../segment/series.ts';
import { acceptsSeg, segBody } from './seg.ts';

const dicomBody = z.string().meta({ contentMediaType: 'application/dicom' });
const seriesBody = z
  .array(dicomBody)
  .describe('multipart/related; type="application/dicom" (as STOW-RS sends it): one DICOM Part 10 instance per part, all of one series.');

/** The shared problem responses, with what series mode adds to them. */
const also = <P extends { description: string }>(p: P, more: string): P => ({ ...p, description: `${p.description} ${more}` });

const schema = {
  tags: [TAGS.segmentation],
  operationId: 'segment',
  summary: 'Segment a DICOM image',
  description: `The body is either the DICOM file itself (\`Content-Type: application/dicom\`, or
\`application/octet-stream\`) or \`multipart/form-data\` with the file in part \`file\` and an
optional ground truth. Supported transfer syntaxes: the native ones (implicit/explicit VR
little endian, explicit big endian, deflated) and the compressed ones the decoder supports;
anything else is 415 naming the transfer syntax UID and name.

**Ground truth and Dice.** A ground truth is an RLE string for an image of the DICOM's own
rows x columns, in \`groundTruthFormat\` (default: the \`rleFormat\` query parameter). Field
\`groundTruth\` is the model's first label (the only one for single-label models); for a
multi-label model send one field \`groundTruth.<label>\` per label you have a truth for. The
response then carries \`dice\` with one score per label sent (1 when both masks are empty).
For \`coco\` (uncompressed) the counts are a JSON array or space-separated integers.

The response is also stored: \`Content-Location\` names \`GET /segmentations/{id}\`.

**Series mode.** Several instances of one series in one request: a \`multipart/related;
type="application/dicom"\` body (one instance per part, as STOW-RS sends them), or one multi-frame
instance as the body with \`frames=all\`. Every frame goes through the engine at once (its dynamic
batcher), with the same query parameters as a single image (no ground truths, no \`frame\`). The JSON
answer (SeriesSegmentation) holds one result per frame, in slice order, each what a single-image POST
of that instance and frame answers and stored under its own id, plus a summary of the series' DICOM
SEG (one segment per label, frames referencing their source instances and frames), stored beside the
first frame's result: \`seg.location\` is \`GET /segmentations/{id}/seg.dcm\`. With \`Accept:
application/dicom\` the answer is that SEG (\`Content-Location\` names where it is kept). Limits:
BODY_LIMIT_BYTES for the body (413 BODY_TOO_LARGE), DICOMWEB_MAX_INSTANCES instances and
DICOMWEB_MAX_FRAMES frames, the series limits every series route shares (413 SERIES_TOO_LARGE).
Instances of different sizes are 422 MIXED_SIZES; of different patients, studies, series or frames of
reference 422 MIXED_SERIES; a part that is not DICOM 422 NOT_DICOM; no image among them 422 NO_IMAGES.`,
  querystring: SegmentQuerySchema,
  documentedBody: {
    content: {
      'application/dicom': { schema: dicomBody },
      'application/octet-stream': { schema: dicomBody },
      'multipart/form-data': { schema: SegmentFormSchema },
      [SERIES_MEDIA_TYPE]: { schema: seriesBody },
    },
  },
  response: {
    200: {
      description: 'Masks (and Dice when a ground truth was sent); in series mode one result per frame and the SEG summary.',
      headers: {
        'Content-Location': {
          type: 'string',
          description: 'Where the stored result can be fetched again (absent when it could not be stored); in series mode only with the SEG answer, naming the stored SEG.',
        },
        'X-Request-Id': { type: 'string', description: "The request id used in the server's logs (the caller's X-Request-Id when it is a sane token)." },
      },
      content: {
        'application/json': { schema: z.union([SegmentationResultSchema, SeriesSegmentationSchema]) },
        // With Accept: application/dicom: the result as a DICOM SEG referencing the sent image(s).
        'application/dicom': { schema: z.instanceof(Buffer).meta({ type: 'string', contentMediaType: 'application/dicom' } as Record<string, unknown>) },
      },
    },
    400: also(Problems.badRequest, 'In series mode also a malformed multipart/related body (code BAD_MULTIPART) or `frame` with a series.'),
    404: Problems.modelNotFound,
    413: also(Problems.payloadTooLarge, 'In series mode also more instances than DICOMWEB_MAX_INSTANCES or frames than DICOMWEB_MAX_FRAMES (code SERIES_TOO_LARGE).'),
    415: also(Problems.unsupportedMediaType, 'In series mode also a multipart/related type or part other than application/dicom.'),
    422: also(
      Problems.unprocessableDicom,
      'In series mode also instances of different sizes (MIXED_SIZES), patients, studies, series or frames of reference (MIXED_SERIES), a part that is not DICOM (NOT_DICOM), no image (NO_IMAGES); and a source that cannot carry a SEG (SEG_UNAVAILABLE).',
    ),
    ...guarded,
    503: Problems.unavailable,
  },
};

const segmentRoutes: FastifyPluginAsyncZod = async (app) => {
  const limit = app.config.bodyLimitBytes;
  // Only DICOM and multipart reach POST /segment; JSON, forms etc. are refused by Fastify with 415.
  app.removeAllContentTypeParsers();
  // multipart/related (series mode) is read whole, like a DICOM: its parts are views of that one buffer.
  app.addContentTypeParser(['application/dicom', 'application/octet-stream', SERIES_MEDIA_TYPE], { parseAs: 'buffer', bodyLimit: limit }, (_req, body, done) => done(null, body));
  await app.register(multipart, { limits: { fileSize: limit, fieldSize: limit } });
  app.post('/segment', { schema }, async (request, reply) => {
    const receivedAt = performance.now();
    // Parse: query (validated by its schema), body, the model asked for.
    const q = request.query;
    const series = seriesInstances(request, q);
    if (series) return segmentSeriesRequest(app, request, reply, series, q);
    const { dicom, truths, truthFormat } = await readSegmentBody(request, limit, q.rleFormat);
    const bytes = dicom.length; // before the engine takes the buffer
    const engine = app.lifecycle.requireEngine();
    const options = queryOptions(q, app.config.previewMaxSide);
    const ref = { name: options.model, version: options.version };
    checkTruthLabels(truths, ref.name ? engine.model(ref.name, ref.version) : engine.defaultModel());

    // A client that goes away cancels its request: dropped from the queue, or its result discarded
    // (the engine answers RequestCancelledError, CANCELLED 499: logged, nothing sent). The response's
    // 'close' before it finished is the client leaving (the request's own 'close' fires once its body
    // has been read, so it cannot tell).
    const wantsSeg = acceptsSeg(request.headers.accept);
    const abort = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableFinished) abort.abort();
    };
    reply.raw.once('close', onClose);

    // Engine: decode, preprocess, infer, postprocess (and the preview when asked for, from the same decode).
    let result: SegmentResult;
    try {
      result = await engine.segment({
        dicom,
        ...options,
        frame: q.frame,
        // The SEG is written from the source's own attributes after the engine is done with it.
        transferDicom: !wantsSeg,
        signal: abort.signal,
      });
      app.metrics.segmentation(result.model.name, 'ok');
    } catch (e) {
      app.metrics.segmentation(ref.name ?? engine.defaultModel()?.name ?? 'default', 'error');
      throw e;
    }

    // Result: Dice against the sent truths, the record with its RLEs.
    const engineDoneAt = performance.now();
    const dice = diceScores(result, truths, truthFormat);
    const record = storedRecord(result, { ttlSeconds: app.config.resultTtlSeconds, dice, receivedAt, engineDoneAt });

    // Store: losing the stored copy must not cost the caller the inference (the masks are in this response).
    const stored = await app.store.put(record, result.preview).then(
      () => true,
      (err: Error) => {
        request.log.error({ err: { message: err.message } }, 'result not stored; it cannot be fetched by id later');
        return false;
      },
    );
    request.log.info(
      {
        resultId: record.id,
        model: `${result.model.name}:${result.model.version}`,
        provider: result.model.executionProvider,
        sopInstanceUid: result.image.sopInstanceUid,
        transferSyntax: result.image.transferSyntax.uid,
        size: `${result.image.rows}x${result.image.columns}`,
        bytes,
        totalMs: record.timings.totalMs,
      },
      'segmented',
    );

    // View: the record in the requested RLE format.
    if (stored) reply.header('content-location', `/segmentations/${record.id}`);
    if (wantsSeg) {
      const seg = segBody(result, dicom, engine.model(result.model.name, result.model.version)?.manifest);
      if (stored) await app.store.putSeg(record.id, seg).catch((e: Error) => request.log.warn({ err: e.message, resultId: record.id }, 'SEG not stored'));
      return reply.type('application/dicom').send(seg);
    }
    return viewOf(record, q.rleFormat, stored, result.masks.map((m) => m.mask));
  });
};
export default segmentRoutes;
