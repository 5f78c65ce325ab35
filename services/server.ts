import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Engine, type EngineConfig } from '../core/engine/index.ts';
import { buildApp, createLogger } from './app.ts';
import type { ServiceConfig } from './config.ts';
import { Lifecycle } from './lifecycle.ts';
import { createMetrics, type ServiceMetrics } from './metrics.ts';
import { reloadModels } from './routes/models.ts';
import { createResultStore, RedisResultStore, type ResultStore } from './store/index.ts';

export function engineConfig(c: ServiceConfig): EngineConfig {
  return {
    modelRepository: c.modelRepository,
    provider: c.executionProvider,
    deviceId: c.cudaDeviceId,
    workers: c.workers,
    intraOpThreads: c.intraOpThreads,
    intraOpSpinning: c.intraOpSpinning,
    maxBatch: c.maxBatch,
    maxDelayMs: c.maxBatchDelayMs,
    maxQueue: c.maxQueue,
    maxPixels: c.maxImagePixels,
    ...(c.defaultModel ? { defaultModel: c.defaultModel } : {}),
  };
}

export interface Service {
  app: FastifyInstance;
  lifecycle: Lifecycle;
  store: ResultStore;
  metrics: ServiceMetrics;
  /** The bound address, e.g. http://127.0.0.1:39211. */
  url: string;
  /** Resolves when the engine has started (or rejects with its start-up error). */
  engineStarted: Promise<Engine>;
  reload(): ReturnType<typeof reloadModels>;
  /**
   * Graceful stop: readiness false at once, the listener closes, accepted requests (in flight or
   * queued in the engine) finish, then the engine and store close. Rejects after `timeoutMs`.
   */
  shutdown(timeoutMs?: number): Promise<void>;
}

/**
 * Listen first, then start the engine: probes answer (startupz 503, livez 200) while models load,
 * which on a large model or a cold GPU can take longer than a kubelet's patience.
 */
export async function startService(config: ServiceConfig, opts: { logger?: Logger } = {}): Promise<Service> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const metrics = createMetrics();
  const store = createResultStore({ redisUrl: config.redisUrl, ttlSeconds: config.resultTtlSeconds, max: config.resultCacheMax }, logger.child({ component: 'store' }));
  if (store instanceof RedisResultStore) {
    await store.waitReady(5000).catch((e: Error) => logger.warn({ err: { message: e.message } }, 'redis not reachable yet; results will not be stored until it is'));
  }
  const lifecycle = new Lifecycle();
  const app = await buildApp({ config, lifecycle, store, metrics, logger });
  const url = await app.listen({ port: config.port, host: config.host });
  logger.info(
    {
      url,
      store: store.kind,
      auth: config.apiToken ? 'bearer' : 'off',
      provider: config.executionProvider,
      workers: config.workers,
      intraOpThreads: config.intraOpThreads,
      intraOpSpinning: config.intraOpSpinning,
      maxBatch: config.maxBatch,
      maxBatchDelayMs: config.maxBatchDelayMs,
      maxQueue: config.maxQueue,
    },
    'listening; loading models',
  );

  const engineStarted = Engine.start(engineConfig(config), logger, metrics.observer).then(
    (engine) => {
      lifecycle.attach(engine);
      metrics.setModels(engine.models(), config.executionProvider);
      for (const m of engine.models()) {
        if (config.executionProvider === 'cuda' && m.executionProvider !== 'cuda') {
          logger.warn({ model: m.name, version: m.version, provider: m.executionProvider }, 'CUDA requested but not available; serving on CPU');
        }
      }
      const models = engine.models();
      if (!engine.ready()) {
        logger.warn({ repository: config.modelRepository }, 'no model could be loaded; /readyz stays 503 until POST /admin/reload or SIGHUP finds one');
      }
      logger.info({ models: models.map((m) => ({ name: m.name, version: m.version, ready: m.ready, provider: m.executionProvider })) }, 'serving');
      return engine;
    },
    (err: Error) => {
      lifecycle.startupError = err.message;
      logger.error({ err: { message: err.message } }, 'engine failed to start');
      throw err;
    },
  );

  let stopping: Promise<void> | undefined;
  const shutdown = (timeoutMs = (config.drainTimeoutSeconds + config.shutdownDelaySeconds) * 1000): Promise<void> => {
    stopping ??= (async () => {
      lifecycle.beginDrain();
      const engine = lifecycle.engine;
      logger.info({ queueDepth: engine?.queueDepth() ?? 0 }, 'draining: readiness off, finishing accepted requests');
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`drain did not finish within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([
          (async () => {
            // Readiness is already false; keep accepting while the endpoint removal propagates.
            if (config.shutdownDelaySeconds > 0) await new Promise((r) => setTimeout(r, config.shutdownDelaySeconds * 1000));
            // app.close stops the listener and resolves once every in-flight request has its response;
            // those requests hold their engine work, so the engine queue is empty after it.
            await app.close();
            if (engine) {
              await engine.drain();
              await engine.close();
            }
          })(),
          deadline,
        ]);
      } finally {
        clearTimeout(timer);
        lifecycle.phase = 'stopped';
        await store.close().catch(() => undefined);
      }
      logger.info('stopped');
    })();
    return stopping;
  };

  return { app, lifecycle, store, metrics, url, engineStarted, reload: () => reloadModels(app), shutdown };
}
