import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { TAGS } from '../contract/openapi.ts';
import { guarded, json, Problems } from '../contract/problem.ts';
import { LabelQuerySchema, MaskPngQuerySchema, ResultParamsSchema, ResultQuerySchema, SegmentationResultSchema, type StoredResult } from '../contract/segmentation.ts';
import { Problem } from '../problem.ts';
import { createMask } from '../../core/mask.ts';
import { greyPng, renderOverlayPng } from '../render.ts';
import { rleMask, viewOfStored } from '../results.ts';
import { MaskOffload } from '../segment/mask-offload.ts';

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const png = (description: string) => ({
  description,
  content: { 'image/png': { schema: z.instanceof(Buffer).meta({ type: 'string', contentMediaType: 'image/png' } as Record<string, unknown>) } },
});
const errors = { 400: Problems.badParameter, 404: Problems.resultNotFound, ...guarded, 503: Problems.unavailable };

const segmentationRoutes: FastifyPluginAsyncZod = async (app) => {
  // Decoding and re-encoding large masks runs off the main thread (defect 6); closed with the app.
  const work = new MaskOffload();
  app.addHook('onClose', () => work.close());
  const run = work.run.bind(work);
  const load = async (id: string): Promise<StoredResult> => {
    const r = ID.test(id) ? await app.store.get(id) : undefined;
    if (!r) throw new Problem('result-not-found', `no segmentation ${JSON.stringify(id)}: unknown, or expired after ${app.config.resultTtlSeconds} s`);
    return r;
  };
  const pickMasks = (r: StoredResult, label: string | undefined) => {
    if (label === undefined) return r.masks;
    const m = r.masks.filter((x) => x.label === label);
    if (m.length === 0) throw new Problem('bad-request', `label ${JSON.stringify(label)} is not in this result; labels: ${r.masks.map((x) => x.label).join(', ')}`);
    return m;
  };
  const tags = [TAGS.segmentation];

  app.get(
    '/segmentations/:id',
    {
      schema: {
        tags,
        operationId: 'getSegmentation',
        summary: 'Fetch a stored result',
        description: 'The same body POST /segment returned, with the masks re-encoded in `rleFormat`.',
        params: ResultParamsSchema,
        querystring: ResultQuerySchema,
        response: { 200: json('The stored result.', SegmentationResultSchema), ...errors },
      },
    },
    async (request) => viewOfStored(await load(request.params.id), request.query.rleFormat, run),
  );

  app.get(
    '/segmentations/:id/mask.png',
    {
      schema: {
        tags,
        operationId: 'getSegmentationMaskPng',
        summary: 'The mask as a PNG',
        description:
          "8-bit greyscale PNG at the image's rows x columns: 255 where the mask is set (without `label`, the union of all labels), or with `as=labelmap` each label's 1-based index.",
        params: ResultParamsSchema,
        querystring: MaskPngQuerySchema,
        response: { 200: png('PNG image.'), ...errors },
      },
    },
    async (request, reply) => {
      const r = await load(request.params.id);
      const { rows, columns } = r.image;
      const picked = pickMasks(r, request.query.label);
      const values = request.query.as === 'labelmap' ? picked.map((m) => r.masks.indexOf(m) + 1) : undefined;
      const u = await run({ op: 'union', masks: picked.map(rleMask), rows, cols: columns, ...(values ? { values } : {}) });
      if (u.op !== 'union') throw new Error('mask work answered the wrong task');
      const image = await greyPng(u.pixels, rows, columns);
      reply.type('image/png');
      return image;
    },
  );

  app.get(
    '/segmentations/:id/overlay.png',
    {
      schema: {
        tags,
        operationId: 'getSegmentationOverlayPng',
        summary: 'The image with the masks tinted over it',
        description: `RGB PNG of the stored preview (the image windowed to 8 bits with the file's VOI window or
its min..max, longer side at most PREVIEW_MAX_SIDE, default 256 pixels) with each label's
mask tinted (alpha 0.4, opaque outline). Without \`label\`, every label in its own colour.
404 when the segmentation was made without \`preview=true\` (or the server keeps no previews, PREVIEW_MAX_SIDE=0).`,
        params: ResultParamsSchema,
        querystring: LabelQuerySchema,
        response: { 200: png('PNG image.'), ...errors },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const r = await load(id);
      const preview = await app.store.getPreview(id);
      if (!preview) throw new Problem('result-not-found', `segmentation ${id} has no stored preview to overlay: POST /segment?preview=true keeps one`);
      const masks = pickMasks(r, request.query.label);
      const { width, height } = preview;
      const sampled = await run({ op: 'sample', masks: masks.map(rleMask), width, height });
      if (sampled.op !== 'sample') throw new Error('mask work answered the wrong task');
      const image = await renderOverlayPng(
        preview,
        sampled.masks.map((data) => createMask(height, width, data)),
        masks.map((m) => r.masks.indexOf(m)),
      );
      reply.type('image/png');
      return image;
    },
  );
};
export default segmentationRoutes;
