import type { FastifyInstance } from 'fastify';
import { RLE_FORMATS, type RleFormat } from '../../core/rle/index.ts';
import { Problem } from '../problem.ts';
import { renderMaskPng, renderOverlayPng } from '../render.ts';
import { DEFAULT_RLE_FORMAT, storedMaskToMask, viewOf } from '../results.ts';
import type { StoredResult } from '../store/types.ts';

const idParams = {
  type: 'object',
  // Anything that is not one of our ids cannot exist: answer 404 below rather than 400 here.
  properties: { id: { type: 'string', maxLength: 128 } },
  required: ['id'],
} as const;

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const labelQuery = {
  type: 'object',
  properties: { label: { type: 'string', minLength: 1, maxLength: 128 } },
  additionalProperties: false,
} as const;

export default async function segmentationRoutes(app: FastifyInstance): Promise<void> {
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

  app.get(
    '/segmentations/:id',
    {
      schema: {
        params: idParams,
        querystring: {
          type: 'object',
          properties: { rleFormat: { type: 'string', enum: [...RLE_FORMATS], default: DEFAULT_RLE_FORMAT } },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const { rleFormat } = request.query as { rleFormat: RleFormat };
      return viewOf(await load(id), rleFormat, true);
    },
  );

  app.get('/segmentations/:id/mask.png', { schema: { params: idParams, querystring: labelQuery } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const { label } = request.query as { label?: string };
    const r = await load(id);
    const png = await renderMaskPng(pickMasks(r, label).map(storedMaskToMask), r.image.rows, r.image.columns);
    reply.type('image/png').header('cache-control', 'private, max-age=60');
    return png;
  });

  app.get('/segmentations/:id/overlay.png', { schema: { params: idParams, querystring: labelQuery } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const { label } = request.query as { label?: string };
    const r = await load(id);
    const preview = await app.store.getPreview(id);
    if (!preview) throw new Problem('result-not-found', `segmentation ${id} has no stored preview to overlay (PREVIEW_MAX_SIDE=0)`);
    const masks = pickMasks(r, label);
    const png = await renderOverlayPng(preview, masks.map(storedMaskToMask), masks.map((m) => r.masks.indexOf(m)));
    reply.type('image/png').header('cache-control', 'private, max-age=60');
    return png;
  });
}
