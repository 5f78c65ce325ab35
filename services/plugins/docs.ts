import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import { OPENAPI_FRAME, transform, transformObject } from '../contract/openapi.ts';

/**
 * @fastify/swagger in dynamic mode: every route registered after this plugin is collected (onRoute)
 * and the OpenAPI document is generated from the routes' zod schemas on first request. Register it
 * before the routes.
 */
export default fp(
  async (app) => {
    await app.register(swagger, { openapi: OPENAPI_FRAME, transform, transformObject });
  },
  { fastify: '5.x', name: 'openapi' },
);
