/**
 * POST /segment in series mode: several instances in one request (`multipart/related;
 * type="application/dicom"`, the STOW-RS body form), or every frame of one multi-frame instance
 * (`?frames=all`). Segmenting them is services/series/segment-instances.ts (the one place, shared with
 * the DICOMweb and DIMSE routes): the series checks, every frame through the engine at once (its
 * dynamic batcher), one SEG. This file turns that into the HTTP answer: one stored result per frame
 * (the single-image record, so each can be fetched by id like any other) and the SEG, stored beside
 * the first frame's result (`GET /segmentations/{id}/seg.dcm`) for the results' TTL.
 *
 * Limits: the body is BODY_LIMIT_BYTES like any other; instances and frames are the series limits
 * every series route shares (DICOMWEB_MAX_INSTANCES, DICOMWEB_MAX_FRAMES): 413 SERIES_TOO_LARGE.
 * Logs carry counts, timings and the SEG's UID, never patient or study attributes.
 */
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { queryOptions } from './query-options.ts';
import { SegWriteError } from '../../core/seg/write-seg.ts';
import type { SeriesSegmentation, SegmentQuery } from '../contract/segmentation.ts';
import { boundaryOf, MultipartError, parseMultipart } from '../dicomweb/multipart.ts';
import { Problem } from '../problem.ts';
import { viewOf } from '../results.ts';
import { seriesProblem } from '../series/problem.ts';
import { segmentInstances, segSummary, SeriesInputError, type SegmentedSeries } from '../series/segment-instances.ts';
import { acceptsSeg } from '../routes/seg.ts';
import { storedRecord } from './record.ts';

export const SERIES_MEDIA_TYPE = 'multipart/related';
const DICOM = 'application/dicom';

const mediaType = (contentType: string | undefined) => (contentType ?? '').split(';')[0]!.trim().toLowerCase();

/** A Content-Type parameter's value (quoted or not), lower case. */
function parameter(contentType: string, name: string): string | undefined {
  const m = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]*))`, 'i').exec(contentType);
  return m ? (m[1] ?? m[2] ?? '').trim().toLowerCase() : undefined;
}

/**
 * The instances of a series-mode request, or undefined for a single-image request. Series mode is a
 * multipart/related body, or `frames=all` with the DICOM as the body.
 */
export function seriesInstances(request: FastifyRequest, q: Pick<SegmentQuery, 'frames' | 'frame'>): Uint8Array[] | undefined {
  const contentType = request.headers['content-type'] ?? '';
  const related = mediaType(contentType) === SERIES_MEDIA_TYPE;
  if (!related && q.frames !== 'all') return undefined;
  if (q.frame !== undefined) {
    throw new Problem('bad-request', 'querystring/frame: not in series mode (frames=all or a multipart/related body), where every frame is segmented', { code: 'VALIDATION' });
  }
  if (related) return relatedParts(contentType, request.body);
  if (request.isMultipart()) {
    throw new Problem('bad-request', 'frames=all takes the DICOM as the body (Content-Type: application/dicom), not multipart/form-data: ground truths are per image and not taken in series mode', {
      code: 'VALIDATION',
    });
  }
  if (Buffer.isBuffer(request.body)) return [request.body];
  throw new Problem('unsupported-media-type', 'send the DICOM as the body with Content-Type: application/dicom', { code: 'UNSUPPORTED_MEDIA_TYPE' });
}

/** The application/dicom parts of a multipart/related body (DICOMweb's STOW-RS form). */
function relatedParts(contentType: string, body: unknown): Uint8Array[] {
  const type = parameter(contentType, 'type');
  if (type !== undefined && type !== DICOM) {
    throw new Problem('unsupported-media-type', `multipart/related must be of type="application/dicom" (one DICOM Part 10 instance per part), got type=${JSON.stringify(type)}`, {
      code: 'UNSUPPORTED_MEDIA_TYPE',
    });
  }
  if (!Buffer.isBuffer(body) || body.length === 0) throw new Problem('bad-multipart', 'the multipart/related body is empty', { code: 'BAD_MULTIPART' });
  let parts: ReturnType<typeof parseMultipart>;
  try {
    parts = parseMultipart(body, boundaryOf(contentType));
  } catch (e) {
    if (e instanceof MultipartError) throw new Problem('bad-multipart', `malformed multipart/related body: ${e.message}`, { code: 'BAD_MULTIPART' });
    throw e;
  }
  if (parts.length === 0) throw new Problem('bad-multipart', 'the multipart/related body has no parts', { code: 'BAD_MULTIPART' });
  parts.forEach((p, i) => {
    if (p.contentType !== undefined && mediaType(p.contentType) !== DICOM) {
      throw new Problem('unsupported-media-type', `part ${i + 1} is ${JSON.stringify(mediaType(p.contentType))}; every part must be application/dicom`, { code: 'UNSUPPORTED_MEDIA_TYPE' });
    }
  });
  return parts.map((p) => p.body);
}

/**
 * Segments the instances and answers: the SEG (Accept: application/dicom, Content-Location naming
 * where it is kept) or the JSON SeriesSegmentation.
 */
export async function segmentSeriesRequest(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  instances: Uint8Array[],
  q: SegmentQuery,
): Promise<SeriesSegmentation | FastifyReply> {
  const receivedAt = performance.now();
  const engine = app.lifecycle.requireEngine();
  const options = queryOptions(q, app.config.previewMaxSide);
  const ref = { name: options.model, version: options.version };
  const bytes = instances.reduce((n, b) => n + b.length, 0);
  // The client going away cancels every frame still queued (see POST /segment's single-image path).
  const abort = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  let s: SegmentedSeries;
  try {
    s = await segmentInstances(engine, instances, {
      ...options,
      maxInstances: app.config.dicomweb.maxInstances,
      maxFrames: app.config.dicomweb.maxFrames,
      signal: abort.signal,
    });
  } catch (e) {
    app.metrics.segmentation(ref.name ?? engine.defaultModel()?.name ?? 'default', 'error');
    if (e instanceof SeriesInputError) throw seriesProblem(e);
    if (e instanceof SegWriteError) throw new Problem('unprocessable-dicom', `no DICOM SEG can be made for this series: ${e.message}`, { code: 'SEG_UNAVAILABLE' });
    throw e;
  }
  const first = s.results[0]!;
  for (const r of s.results) app.metrics.segmentation(r.model.name, 'ok');

  // One record per frame, stored like a single-image result; losing the store must not cost the answer.
  const engineDoneAt = performance.now();
  const ttlSeconds = app.config.resultTtlSeconds;
  const records = s.results.map((r) => storedRecord(r, { ttlSeconds, dice: undefined, receivedAt, engineDoneAt }));
  let failed: Error | undefined;
  const stored = await Promise.all(
    records.map((rec, k) =>
      app.store.put(rec, s.results[k]!.preview).then(
        () => true,
        (err: Error) => {
          failed = err;
          return false;
        },
      ),
    ),
  );
  if (failed) request.log.error({ err: { message: failed.message }, notStored: stored.filter((x) => !x).length }, 'series results not stored; they cannot be fetched by id later');
  // The SEG lives beside the first stored frame's result, with its TTL.
  const host = records.find((_, k) => stored[k]);
  let location: string | undefined;
  if (host) {
    await app.store.putSeg(host.id, s.seg.bytes).then(
      () => (location = `/segmentations/${host.id}/seg.dcm`),
      (e: Error) => request.log.warn({ err: e.message, resultId: host.id }, 'series SEG not stored'),
    );
  }
  const totalMs = performance.now() - receivedAt;
  request.log.info(
    {
      mode: 'series',
      model: `${first.model.name}:${first.model.version}`,
      provider: first.model.executionProvider,
      instances: s.instances,
      frames: s.results.length,
      bytes,
      segSopInstanceUid: s.seg.sopInstanceUid,
      segFrames: s.seg.frames.length,
      segBytes: s.seg.bytes.length,
      segmentMs: Math.round(s.timings.segmentMs),
      writeMs: Math.round(s.timings.writeMs),
      totalMs: Math.round(totalMs),
    },
    'series segmented',
  );

  if (acceptsSeg(request.headers.accept)) {
    if (location) reply.header('content-location', location);
    return reply.type(DICOM).send(Buffer.from(s.seg.bytes.buffer, s.seg.bytes.byteOffset, s.seg.bytes.byteLength));
  }
  return {
    model: first.model,
    instances: s.instances,
    results: records.map((rec, k) =>
      viewOf(
        rec,
        q.rleFormat,
        stored[k]!,
        s.results[k]!.masks.map((m) => m.mask),
      ),
    ),
    seg: { ...segSummary(s.seg), ...(location ? { location } : {}) },
    timings: { segmentMs: s.timings.segmentMs, writeMs: s.timings.writeMs, totalMs },
  };
}
