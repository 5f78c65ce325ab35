import { fileURLToPath } from 'node:url';
import swaggerUi from '@fastify/swagger-ui';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { openApiYaml, TAGS } from '../contract/openapi.ts';
import { guarded } from '../contract/problem.ts';

/** The committed copy of the generated document (`npm run openapi` writes it; a test checks it is current). */
export const OPENAPI_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));

/**
 * The OpenAPI document generated from the routes (plugins/docs.ts), as YAML and in Swagger UI.
 * With DOCS_PUBLIC (default true) both need no token even when API_TOKEN is set: the page must load
 * for its Authorize button (the document declares the bearer scheme) to take the token.
 */
const docsRoutes: FastifyPluginAsyncZod = async (app) => {
  const open = app.config.docsPublic;
  // Swagger UI's own routes (page, assets, JSON/YAML copies) are registered inside this plugin.
  app.addHook('onRoute', (route) => {
    if (open && route.url.startsWith('/docs')) route.config = { ...route.config, public: true };
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: {
      // The token typed into Authorize survives a page reload; "Try it out" starts with empty fields.
      persistAuthorization: true,
      tryItOutEnabled: false,
      displayRequestDuration: true,
    },
  });
  app.get(
    '/openapi.yaml',
    {
      config: { public: open },
      schema: {
        tags: [TAGS.operations],
        operationId: 'openapi',
        summary: 'This document',
        description: 'Generated from the routes; Swagger UI renders it at /docs. Readable without a token unless DOCS_PUBLIC=false.',
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
