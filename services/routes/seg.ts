/**
 * GET /segmentations/{id}/seg.dcm: the DICOM SEG of a stored result.
 *
 * The SEG carries the source's patient/study identity, so it is stored as bytes beside the result, in
 * the same store and with the same TTL (ResultStore.putSeg/getSeg), and never logged. Results whose
 * POST asked for a SEG (Accept: application/dicom) have one, and so does the first frame's result of a
 * series (series mode), holding the series' SEG.
 */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { TAGS } from '../contract/openapi.ts';
import { guarded, Problems } from '../contract/problem.ts';
import { ResultParamsSchema } from '../contract/segmentation.ts';
import type { ModelManifest } from '../../core/manifest.ts';
import type { SegmentResult } from '../../core/segmentation/records.ts';
import { segFor } from '../../core/seg/from-result.ts';
import { SegWriteError } from '../../core/seg/write-seg.ts';
import { Problem } from '../problem.ts';

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const segRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/segmentations/:id/seg.dcm',
    {
      schema: {
        tags: [TAGS.segmentation],
        operationId: 'getSegmentationSeg',
        summary: 'The result as a DICOM Segmentation object',
        description: `DICOM SEG (Segmentation Storage 1.2.840.10008.5.1.4.1.1.66.4, BINARY, one segment per label)
referencing the segmented image. It carries the source's patient and study attributes, so it is
kept only for the result's TTL. A result has one when its POST asked for it (\`Accept: application/dicom\`);
in series mode the first frame's result holds the series' SEG. 404 when the result is unknown or
expired, or has no SEG.`,
        params: ResultParamsSchema,
        response: {
          200: {
            description: 'DICOM Part 10 file.',
            content: { 'application/dicom': { schema: z.instanceof(Buffer).meta({ type: 'string', contentMediaType: 'application/dicom' } as Record<string, unknown>) } },
          },
          400: Problems.badParameter,
          404: Problems.resultNotFound,
          ...guarded,
          503: Problems.unavailable,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const bytes = ID.test(id) ? await app.store.getSeg(id) : undefined;
      if (!bytes) throw new Problem('result-not-found', `no DICOM SEG for segmentation ${JSON.stringify(id)}: unknown, expired after ${app.config.resultTtlSeconds} s, or stored without one`);
      reply.type('application/dicom').header('cache-control', 'private, no-store').header('content-disposition', `attachment; filename="${id}.seg.dcm"`);
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
  );
};
export default segRoutes;

/** True when an Accept header asks for application/dicom (POST /segment then answers the SEG). */
export function acceptsSeg(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((t) => {
    const [type, ...params] = t.trim().toLowerCase().split(';');
    return type === 'application/dicom' && !params.some((p) => /^\s*q=0(\.0*)?\s*$/.test(p));
  });
}

/**
 * The SEG for a POST /segment result as a Buffer, or a 422 problem when the source cannot carry one
 * (e.g. no Study/Series Instance UID). `dicom` must still hold the source's bytes (transferDicom: false).
 */
export function segBody(result: SegmentResult, dicom: Uint8Array, manifest: Pick<ModelManifest, 'background'> | undefined): Buffer {
  try {
    const seg = segFor(result, dicom, manifest);
    return Buffer.from(seg.bytes.buffer, seg.bytes.byteOffset, seg.bytes.byteLength);
  } catch (e) {
    if (e instanceof SegWriteError) throw new Problem('unprocessable-dicom', `no DICOM SEG can be made for this image: ${e.message}`, { code: 'SEG_UNAVAILABLE' });
    throw e;
  }
}
