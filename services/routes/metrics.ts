import type { FastifyInstance } from 'fastify';

export default async function metricsRoutes(app: FastifyInstance): Promise<void> {
  const registry = app.metrics.registry;
  app.metrics.setQueueDepthSource(() => app.lifecycle.engine?.queueDepth() ?? 0);
  app.get('/metrics', { config: { public: true, quiet: true, rateLimit: false } }, async (_request, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
}
