import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from 'fastify';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { pino, type Logger } from 'pino';
import type { EngineConfig } from '../core/engine/index.ts';
import { engineConfig, type ServiceConfig } from './config.ts';
import errorHandling from './errors.ts';
import type { Lifecycle } from './lifecycle.ts';
import { createMetrics, type ServiceMetrics } from './metrics.ts';
import { Problem, sendProblem } from './problem.ts';
import auth, { checkBearer } from './auth.ts';
import { securityHeaders } from './security.ts';
import { corsOptions } from './cors.ts';
import bodyGuard from './segment/body-guard.ts';
import docs from './plugins/docs.ts';
import engine from './plugins/engine.ts';
import store from './plugins/store.ts';
import type { ResultStore } from './store/index.ts';
import healthRoutes from './routes/health.ts';
import metricsRoutes from './routes/metrics.ts';
import modelRoutes from './routes/models.ts';
import v2InferRoutes from './routes/v2-infer.ts';
import segmentRoutes from './routes/segment.ts';
import segmentationRoutes from './routes/segmentations.ts';
import segRoutes from './routes/seg.ts';
import dicomwebRoutes from './routes/dicomweb.ts';
import docsRoutes from './routes/docs.ts';
import dimse from './dimse/plugin.ts';

declare module 'fastify' {
  interface FastifyInstance {
    config: ServiceConfig;
    metrics: ServiceMetrics;
    /** Every method + path registered, for the spec-vs-routes test and the startup log. */
    routeTable: Array<{ method: string; url: string; querystring?: unknown; hidden: boolean }>;
  }
  interface FastifyContextConfig {
    /** Reachable without the API token (probes, /metrics, OIP health). */
    public?: boolean;
    /** Log completion at debug instead of info (probes and scrapes would flood the log). */
    quiet?: boolean;
  }
}

/** The app with its zod type provider: routes get typed params, query and replies from their schemas. */
export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, ZodTypeProvider>;

export interface AppOptions {
  config: ServiceConfig;
  /** Default: a fresh registry (one per app, so tests can build several). */
  metrics?: ServiceMetrics;
  /** Default: built from the config (Redis when REDIS_URL is set). */
  store?: ResultStore;
  lifecycle?: Lifecycle;
  /** Default: engineConfig(config). */
  engine?: EngineConfig;
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

/**
 * Builds the Fastify app: the type provider, the plugins that own resources (result store, engine;
 * each closes itself when the app closes), auth, error handling, the OpenAPI collector and every
 * route group. Does not listen; the engine starts once the app listens.
 */
export async function buildApp(opts: AppOptions): Promise<App> {
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
    // "querystring/threshold: Too big: ...", "querystring: Unrecognized key: \"treshold\"" (the error
    // handler rewrites unknown keys to name the parameter and list the allowed ones).
    schemaErrorFormatter: (errors, context) => new Error(errors.map((e) => `${context}${e.instancePath === '/' ? '' : e.instancePath}: ${e.message}`).join('; ')),
    // Timeouts (issue 15, defect 3). The body's own deadlines are the body guard's (408 problem+json);
    // Node's are the backstops: headers within HEADERS_TIMEOUT_MS, the whole request a little after the
    // body guard would have answered, a silent socket closed after CONNECTION_TIMEOUT_MS (longer than
    // a request may run in the engine), checked every second instead of Node's 30 s.
    requestTimeout: config.headersTimeoutMs + config.bodyTimeoutMs + 5000,
    connectionTimeout: config.connectionTimeoutMs,
    http: { headersTimeout: config.headersTimeoutMs, connectionsCheckingInterval: 1000 },
    // Ids are 36 characters; a longer path parameter is answered 414 by frameworkErrors below.
    routerOptions: { maxParamLength: 128 },
    // The router's own errors (a path that is not valid percent-encoded UTF-8, an over-long
    // parameter) as problem+json with our codes, after the token check (defect 9).
    frameworkErrors: (error, request, reply) => {
      reply.header('x-request-id', request.id);
      securityHeaders(request, reply);
      try {
        if (config.apiToken) checkBearer(config.apiToken, request, reply);
      } catch (e) {
        return sendProblem(reply, e as Problem);
      }
      const path = request.url.split('?')[0]!;
      const instance = path.length > 64 ? `${path.slice(0, 64)}...` : path;
      if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
        return sendProblem(reply, new Problem('uri-too-long', 'a path parameter is longer than 128 characters', { code: 'URI_TOO_LONG', instance }));
      }
      if (error.code === 'FST_ERR_BAD_URL') {
        return sendProblem(reply, new Problem('bad-request', 'the URL path is not valid percent-encoded UTF-8', { code: 'BAD_URL', instance }));
      }
      request.log.error({ err: error }, 'router error');
      return sendProblem(reply, new Problem('internal-error', 'the server failed to route this request; the failure was logged', { code: 'INTERNAL', instance }));
    },
  }).withTypeProvider<ZodTypeProvider>();
  // The routes' zod schemas validate requests (unknown query parameters are rejected: a typo such as
  // ?treshold= must not be silently ignored) and check every response body before it is sent.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  const metrics = opts.metrics ?? createMetrics();
  app.decorate('config', config);
  app.decorate('metrics', metrics);
  app.decorate('routeTable', [] as FastifyInstance['routeTable']);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) app.routeTable.push({ method: m, url: route.url, querystring: route.schema?.querystring, hidden: route.schema?.hide === true });
  });

  await app.register(errorHandling);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onSend', async (request, reply) => {
    securityHeaders(request, reply);
    // While draining, end keep-alive connections after their current response so the listener's
    // close completes as soon as the accepted work is done.
    const phase = app.lifecycle.phase;
    if (phase === 'draining' || phase === 'stopped') reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, never the raw URL: ids in paths would explode the label cardinality.
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    metrics.httpRequest(request.method, route, reply.statusCode, seconds);
    const line = { method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 };
    if (request.routeOptions.config?.quiet && reply.statusCode < 400) request.log.debug(line, 'request completed');
    else request.log.info(line, 'request completed');
  });

  // Before any route: it collects them as they are added.
  await app.register(docs);
  // Before auth: browsers send preflights without the token (services/cors.ts).
  if (config.corsOrigins) await app.register(cors, corsOptions(config.corsOrigins));
  await app.register(auth, { token: config.apiToken });
  // After auth: an unauthenticated client never holds body budget.
  await app.register(bodyGuard, {
    bodyTimeoutMs: config.bodyTimeoutMs,
    bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
    bodyLimitBytes: config.bodyLimitBytes,
    maxInflightBodyBytes: config.maxInflightBodyBytes,
  });
  // Store first, engine second: they close in reverse order (engine drained, then the store).
  await app.register(store, { store: opts.store });
  await app.register(engine, { engine: opts.engine ?? engineConfig(config), lifecycle: opts.lifecycle });
  // DIMSE C-STORE SCP when DIMSE_PORT is set; after the engine, so it closes before the engine drains.
  await app.register(dimse);

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
  await app.register(v2InferRoutes);
  await app.register(segmentRoutes);
  await app.register(segmentationRoutes);
  await app.register(segRoutes);
  await app.register(dicomwebRoutes);
  await app.register(docsRoutes);
  return app;
}
