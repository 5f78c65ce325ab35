import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { parse } from 'yaml';

export const OPENAPI_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));

/** The hand-written openapi.yaml is the contract; the UI renders it as is (static mode). */
export default async function docsRoutes(app: FastifyInstance): Promise<void> {
  const text = readFileSync(OPENAPI_PATH, 'utf8');
  const document = parse(text) as Record<string, unknown>;
  await app.register(swagger, { mode: 'static', specification: { document: document as never } });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.yaml', async (_request, reply) => {
    reply.type('application/yaml; charset=utf-8');
    return text;
  });
}
