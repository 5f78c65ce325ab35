import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Problem } from './problem.ts';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Throws the 401 Problem (and sets WWW-Authenticate) unless `request` carries `Bearer <token>`. Also
 * used for the router's own errors (a bad URL), which are answered before any route hook runs.
 */
export function checkBearer(token: string, request: FastifyRequest, reply: FastifyReply): void {
  const header = request.headers.authorization;
  const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!m) {
    reply.header('www-authenticate', 'Bearer realm="unet-seg"');
    throw new Problem('unauthorized', 'this endpoint requires an Authorization: Bearer <token> header', { code: 'TOKEN_MISSING' });
  }
  if (!timingSafeEqual(digest(m[1]!), digest(token))) {
    reply.header('www-authenticate', 'Bearer realm="unet-seg", error="invalid_token"');
    throw new Problem('unauthorized', 'the bearer token is not valid', { code: 'TOKEN_INVALID' });
  }
}

/**
 * Optional static bearer token (API_TOKEN). Routes marked `config.public` (probes, /metrics, OIP
 * health) stay open so the kubelet and Prometheus need no secret, and are documented so (an empty
 * `security` in the OpenAPI document) whether or not a token is set. Comparison is on SHA-256
 * digests with timingSafeEqual, so neither the token's content nor its length leaks through timing.
 */
export default fp(
  async (app, opts: { token: string | undefined }) => {
    app.addHook('onRoute', (route) => {
      if (route.config?.public) route.schema = { ...route.schema, security: [] };
    });
    if (!opts.token) return;
    const token = opts.token;
    app.addHook('onRequest', async (request, reply) => {
      if (request.routeOptions.config?.public) return;
      checkBearer(token, request, reply);
    });
  },
  { fastify: '5.x', name: 'bearer-auth' },
);
