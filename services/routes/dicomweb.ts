/**
 * DICOMweb client mode: POST /dicomweb/studies/{study}/series/{series}/segment pulls the series from the
 * configured PACS (WADO-RS), segments every frame through the Engine, writes one DICOM SEG for the series
 * and stores it back (STOW-RS). The answer names the SEG's SOP Instance UID.
 *
 * PACS failures: unknown study/series 404, PACS unreachable or answering errors 502, PACS too slow 504,
 * all problem+json. The SEG is stored last, in one STOW-RS of one instance, so a failure before it leaves
 * nothing in the PACS. Logs carry counts, timings and the SEG's UID, never patient attributes.
 */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { parseModelRef } from '../../core/engine/repository.ts';
import { TAGS } from '../contract/openapi.ts';
import { guarded, PROBLEM_CONTENT_TYPE, ProblemSchema, Problems } from '../contract/problem.ts';
import { SegSummarySchema } from '../contract/segmentation.ts';
import { Problem } from '../problem.ts';
import { DicomwebClient, DicomwebError } from '../dicomweb/client.ts';
import type { DicomwebConfig } from '../dicomweb/config.ts';
import { segmentSeries } from '../dicomweb/segment-series.ts';
import { seriesProblem } from '../series/problem.ts';
import { SeriesInputError } from '../series/segment-instances.ts';

const Uid = z.string().regex(/^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/, 'must be a DICOM UID').max(64);

const ParamsSchema = z.object({ study: Uid.describe('Study Instance UID'), series: Uid.describe('Series Instance UID') });
const QuerySchema = z.object({
  model: z.string().max(200).optional().describe('name or name:version; default the default model'),
  threshold: z.coerce.number().gt(0).lt(1).optional(),
  minArea: z.coerce.number().int().min(0).optional(),
});

const count = z.number().int().min(0);
const ResultSchema = z.object({
  study: z.string(),
  series: z.string(),
  seg: SegSummarySchema,
  model: z.object({ name: z.string(), version: z.string() }),
  instances: count,
  frames: z.array(
    z.object({
      sopInstanceUid: z.string(),
      frame: count,
      masks: z.array(z.object({ label: z.string(), area: count, empty: z.boolean(), bbox: z.tuple([count, count, count, count]).nullable() })),
    }),
  ),
  timings: z.object({ retrieveMs: z.number(), segmentMs: z.number(), writeMs: z.number(), storeMs: z.number(), totalMs: z.number() }),
});

export interface DicomwebRoutesOptions {
  /** Default: the service configuration's (DICOMWEB_* variables). */
  config?: DicomwebConfig;
}

const gatewayProblem = {
  description: 'The PACS is unreachable, answered an error, or refused the SEG (502); or did not answer in DICOMWEB_TIMEOUT_MS (504).',
  content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } },
};

const dicomwebRoutes: FastifyPluginAsyncZod<DicomwebRoutesOptions> = async (app, opts) => {
  const cfg = opts.config ?? app.config.dicomweb;
  const client = cfg.url ? new DicomwebClient({ baseUrl: cfg.url, authorization: cfg.authorization, timeoutMs: cfg.timeoutMs, maxBytes: cfg.maxBytes }) : undefined;

  app.post(
    '/dicomweb/studies/:study/series/:series/segment',
    {
      schema: {
        tags: [TAGS.segmentation],
        operationId: 'segmentDicomwebSeries',
        summary: 'Segment a series in the PACS and store its SEG there',
        description: `Pulls the series from DICOMWEB_URL with WADO-RS, segments every frame, writes one DICOM SEG
(BINARY, one segment per label, frames referencing their source instances and frames) and stores it
in the same study with STOW-RS. 404 when the PACS has no such series; 502/504 when the PACS fails
or is too slow (nothing is stored then); 413 over DICOMWEB_MAX_INSTANCES / DICOMWEB_MAX_FRAMES;
422 for a series mixing image sizes; 503 when client mode is not configured.`,
        params: ParamsSchema,
        querystring: QuerySchema,
        response: {
          200: { description: 'The SEG stored, and per frame the masks\' facts.', content: { 'application/json': { schema: ResultSchema } } },
          400: Problems.badParameter,
          404: Problems.modelNotFound,
          413: Problems.payloadTooLarge,
          422: Problems.unprocessableDicom,
          ...guarded,
          502: gatewayProblem,
          503: Problems.unavailable,
          504: gatewayProblem,
        },
      },
    },
    async (request, reply) => {
      if (!client) throw new Problem('http', 'DICOMweb client mode is off: set DICOMWEB_URL', { status: 503, code: 'DICOMWEB_NOT_CONFIGURED' });
      const { study, series } = request.params;
      const q = request.query;
      const engine = app.lifecycle.requireEngine();
      const ref: { name?: string; version?: string } = q.model ? parseModelRef(q.model) : {};
      const abort = new AbortController();
      // The caller went away before the answer: drop the frames still queued in the engine.
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) abort.abort();
      });
      try {
        const r = await segmentSeries(client, engine, {
          study,
          series,
          model: ref.name,
          version: ref.version,
          threshold: q.threshold,
          minArea: q.minArea,
          maxInstances: cfg.maxInstances,
          maxFrames: cfg.maxFrames,
          signal: abort.signal,
        });
        request.log.info({ instances: r.instances, frames: r.frames.length, segFrames: r.seg.frames, segBytes: r.seg.bytes, segSopInstanceUid: r.seg.sopInstanceUid, model: `${r.model.name}:${r.model.version}`, timings: r.timings }, 'series segmented, SEG stored');
        return r;
      } catch (e) {
        if (e instanceof DicomwebError) {
          request.log.warn({ pacs: e.kind, status: e.status }, 'DICOMweb call failed');
          if (e.kind === 'not-found') throw new Problem('not-found', `the PACS has no series ${series} in study ${study}`, { code: 'SERIES_NOT_FOUND' });
          if (e.kind === 'timeout') throw new Problem('http', e.message, { status: 504, code: 'PACS_TIMEOUT' });
          throw new Problem('http', e.message, { status: 502, code: e.kind === 'rejected' ? 'PACS_REJECTED' : 'PACS_UNAVAILABLE' });
        }
        if (e instanceof SeriesInputError) throw seriesProblem(e);
        throw e;
      }
    },
  );
};
export default dicomwebRoutes;
