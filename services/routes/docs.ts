import { fileURLToPath } from 'node:url';
import swaggerUi from '@fastify/swagger-ui';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { openApiYaml, TAGS } from '../contract/openapi.ts';
import { guarded } from '../contract/problem.ts';

/** The committed copy of the generated document (`npm run openapi` writes it; a test checks it is current). */
export const OPENAPI_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));

/** The OpenAPI document generated from the routes (plugins/docs.ts), as YAML and in Swagger UI. */
const docsRoutes: FastifyPluginAsyncZod = async (app) => {
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get(
    '/openapi.yaml',
    {
      schema: {
        tags: [TAGS.operations],
        operationId: 'openapi',
        summary: 'This document',
        description: 'Generated from the routes; Swagger UI renders it at /docs.',
        response: { 200: { description: 'OpenAPI 3.1 YAML.', content: { 'application/yaml': { schema: z.string() } } }, ...guarded },
      },
    },
    async (_request, reply) => {
      reply.type('application/yaml; charset=utf-8');
      return openApiYaml(app.swagger());
    },
  );
};
export default docsRoutes;
