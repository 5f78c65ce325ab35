import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { LivenessSchema, OipLiveSchema, OipReadySchema, ReadinessSchema, StartupSchema } from '../contract/health.ts';
import { TAGS } from '../contract/openapi.ts';
import { json, open as errors } from '../contract/problem.ts';
import { redactPaths } from '../errors.ts';

/**
 * Kubernetes probes and the Open Inference Protocol health endpoints. They read in-memory state
 * only (no engine round trip, no I/O), so they answer in well under a millisecond of main-thread
 * time even while the inference workers are saturated.
 */
const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  const config = { public: true, quiet: true, rateLimit: false } as const;
  const lc = app.lifecycle;
  const ops = [TAGS.operations];

  app.get(
    '/livez',
    {
      config,
      schema: {
        tags: ops,
        operationId: 'livez',
        summary: 'Liveness probe',
        description: '200 while the process can answer HTTP at all. Never depends on models or Redis.',
        response: { 200: json('Alive.', LivenessSchema), ...errors },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      config,
      schema: {
        tags: ops,
        operationId: 'readyz',
        summary: 'Readiness probe',
        description:
          '200 iff the engine is ready: a live inference worker and the default model loaded and warmed (a non-default model that failed to load is listed, not blocking); 503 with `reason` while loading, when the default model cannot be served, and from the moment SIGTERM arrives (draining).',
        response: { 200: json('Ready.', ReadinessSchema), 503: json('Not ready.', ReadinessSchema), ...errors },
      },
    },
    async (_request, reply) => {
      const readiness = lc.readiness();
      const ready = readiness.ready;
      const models = lc.engine?.listing() ?? [];
      reply.code(ready ? 200 : 503);
      return {
        status: ready ? ('ready' as const) : ('not-ready' as const),
        phase: lc.phase,
        ...(readiness.ready ? {} : { reason: redactPaths(readiness.reason) }),
        models: models.map((m) => ({ name: m.name, version: m.version, ready: m.ready })),
        store: { kind: app.store.kind, healthy: app.store.healthy() },
      };
    },
  );

  app.get(
    '/startupz',
    {
      config,
      schema: {
        tags: ops,
        operationId: 'startupz',
        summary: 'Startup probe',
        description: '503 until the engine has started (models loaded and warmed), 200 from then on, draining included; 503 with `error` when the engine failed to start.',
        response: { 200: json('Started.', StartupSchema), 503: json('Still starting (or the engine failed to start; see `error`).', StartupSchema), ...errors },
      },
    },
    async (_request, reply) => {
      const started = lc.started();
      reply.code(started ? 200 : 503);
      return { status: started ? ('started' as const) : ('starting' as const), phase: lc.phase, ...(lc.startupError ? { error: lc.startupError } : {}) };
    },
  );

  // OIP: live = the server can receive and respond; ready = every model is ready for inference.
  const oip = [TAGS.oip];
  app.get(
    '/v2/health/live',
    { config, schema: { tags: oip, operationId: 'oipLive', summary: 'OIP server liveness', response: { 200: json('The server is live.', OipLiveSchema), ...errors } } },
    async () => ({ live: true }),
  );
  app.get(
    '/v2/health/ready',
    {
      config,
      schema: {
        tags: oip,
        operationId: 'oipReady',
        summary: 'OIP server readiness',
        response: { 200: json('All models are ready.', OipReadySchema), 503: json('Not ready (loading or draining).', OipReadySchema), ...errors },
      },
    },
    async (_request, reply) => {
      const ready = lc.ready();
      reply.code(ready ? 200 : 503);
      return { ready };
    },
  );
};
export default healthRoutes;
