import { createHash, timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import { Problem } from './problem.ts';

const digest = (s: string) => createHash('sha256').update(s).digest();

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
    const expected = digest(opts.token);
    app.addHook('onRequest', async (request, reply) => {
      if (request.routeOptions.config?.public) return;
      const header = request.headers.authorization;
      const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
      if (!m) {
        reply.header('www-authenticate', 'Bearer realm="unet-seg"');
        throw new Problem('unauthorized', 'this endpoint requires an Authorization: Bearer <token> header', { code: 'TOKEN_MISSING' });
      }
      if (!timingSafeEqual(digest(m[1]!), expected)) {
        reply.header('www-authenticate', 'Bearer realm="unet-seg", error="invalid_token"');
        throw new Problem('unauthorized', 'the bearer token is not valid', { code: 'TOKEN_INVALID' });
      }
    });
  },
  { fastify: '5.x', name: 'bearer-auth' },
);
