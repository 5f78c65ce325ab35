import type { FastifyInstance } from 'fastify';

/**
 * Kubernetes probes and the Open Inference Protocol health endpoints. They read in-memory state
 * only (no engine round trip, no I/O), so they answer in well under a millisecond of main-thread
 * time even while the inference workers are saturated.
 */
export default async function healthRoutes(app: FastifyInstance): Promise<void> {
  const open = { public: true, quiet: true, rateLimit: false } as const;
  const lc = app.lifecycle;

  app.get('/livez', { config: open }, async () => ({ status: 'ok' }));

  app.get('/readyz', { config: open }, async (_request, reply) => {
    const ready = lc.ready();
    const models = lc.engine?.models() ?? [];
    reply.code(ready ? 200 : 503);
    return {
      status: ready ? 'ready' : 'not-ready',
      phase: lc.phase,
      models: models.map((m) => ({ name: m.name, version: m.version, ready: m.ready })),
      store: { kind: app.store.kind, healthy: app.store.healthy() },
    };
  });

  app.get('/startupz', { config: open }, async (_request, reply) => {
    const started = lc.started();
    reply.code(started ? 200 : 503);
    return { status: started ? 'started' : 'starting', phase: lc.phase, ...(lc.startupError ? { error: lc.startupError } : {}) };
  });

  // OIP: live = the server can receive and respond; ready = every model is ready for inference.
  app.get('/v2/health/live', { config: open }, async () => ({ live: true }));
  app.get('/v2/health/ready', { config: open }, async (_request, reply) => {
    const ready = lc.ready();
    reply.code(ready ? 200 : 503);
    return { ready };
  });
}
