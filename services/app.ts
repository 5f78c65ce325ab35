import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { pino, type Logger } from 'pino';
import type { ServiceConfig } from './config.ts';
import { installErrorHandlers } from './errors.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { ServiceMetrics } from './metrics.ts';
import { Problem } from './problem.ts';
import { registerAuth } from './auth.ts';
import type { ResultStore } from './store/index.ts';
import healthRoutes from './routes/health.ts';
import metricsRoutes from './routes/metrics.ts';
import modelRoutes from './routes/models.ts';
import segmentRoutes from './routes/segment.ts';
import segmentationRoutes from './routes/segmentations.ts';
import docsRoutes from './routes/docs.ts';

declare module 'fastify' {
  interface FastifyInstance {
    config: ServiceConfig;
    lifecycle: Lifecycle;
    store: ResultStore;
    metrics: ServiceMetrics;
    /** Every method + path registered, for the spec-vs-routes test and the startup log. */
    routeTable: Array<{ method: string; url: string; querystring?: unknown }>;
  }
  interface FastifyContextConfig {
    /** Reachable without the API token (probes, /metrics, OIP health). */
    public?: boolean;
    /** Log completion at debug instead of info (probes and scrapes would flood the log). */
    quiet?: boolean;
  }
}

export interface AppOptions {
  config: ServiceConfig;
  lifecycle: Lifecycle;
  store: ResultStore;
  metrics: ServiceMetrics;
  /** A pino logger; default one at config.logLevel writing JSON to stdout. */
  logger?: Logger;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Honour a caller's X-Request-Id when it is a sane token (it ends up in logs), else mint one. */
function genReqId(req: IncomingMessage): string {
  const h = req.headers['x-request-id'];
  const v = Array.isArray(h) ? h[0] : h;
  return v && REQUEST_ID.test(v) ? v : randomUUID();
}

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'unet-seg' }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** Builds the Fastify app with every route group; does not listen. */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { config } = opts;
  const app = Fastify({
    loggerInstance: (opts.logger ?? createLogger(config.logLevel)) as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    genReqId,
    requestIdHeader: false,
    // One structured line per request is written by the onResponse hook below (route pattern, status, ms).
    logController: new LogController({ disableRequestLogging: true }),
    // Requests that reach us on an open connection during a drain are served (Kubernetes may still
    // route a few before the endpoint removal propagates); the onSend hook below closes their socket.
    return503OnClosing: false,
    ajv: {
      // Unknown query parameters are rejected (a typo such as ?treshold= must not be silently ignored).
      customOptions: { removeAdditional: false, coerceTypes: true, useDefaults: true, allErrors: false },
    },
  });

  app.decorate('config', config);
  app.decorate('lifecycle', opts.lifecycle);
  app.decorate('store', opts.store);
  app.decorate('metrics', opts.metrics);
  app.decorate('routeTable', [] as FastifyInstance['routeTable']);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) app.routeTable.push({ method: m, url: route.url, querystring: route.schema?.querystring });
  });

  installErrorHandlers(app);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onSend', async (_request, reply) => {
    // While draining, end keep-alive connections after their current response so the listener's
    // close completes as soon as the accepted work is done.
    if (opts.lifecycle.phase === 'draining' || opts.lifecycle.phase === 'stopped') reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, never the raw URL: ids in paths would explode the label cardinality.
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    opts.metrics.httpRequest(request.method, route, reply.statusCode, seconds);
    const line = { method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 };
    if (request.routeOptions.config?.quiet && reply.statusCode < 400) request.log.debug(line, 'request completed');
    else request.log.info(line, 'request completed');
  });

  registerAuth(app, config.apiToken);

  if (config.rateLimitRpm) {
    await app.register(rateLimit, {
      global: true,
      max: config.rateLimitRpm,
      timeWindow: 60_000,
      // Probes and scrapes must never be throttled.
      allowList: (request) => request.routeOptions.config?.public === true,
      errorResponseBuilder: (_request, context) =>
        new Problem('too-many-requests', `rate limit of ${context.max} requests per minute exceeded; retry in ${context.after}`, {
          code: 'RATE_LIMITED',
        }),
    });
  }

  await app.register(healthRoutes);
  await app.register(metricsRoutes);
  await app.register(modelRoutes);
  await app.register(segmentRoutes);
  await app.register(segmentationRoutes);
  await app.register(docsRoutes);
  return app;
}
