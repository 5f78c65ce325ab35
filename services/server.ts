import type { Logger } from 'pino';
import type { Engine } from '../core/engine/index.ts';
import { buildApp, createLogger, type App } from './app.ts';
import type { ServiceConfig } from './config.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { ServiceMetrics } from './metrics.ts';
import { reloadModels } from './routes/models.ts';
import type { ResultStore } from './store/index.ts';

export { engineConfig } from './config.ts';

export interface Service {
  app: App;
  lifecycle: Lifecycle;
  store: ResultStore;
  metrics: ServiceMetrics;
  /** The bound address, e.g. http://127.0.0.1:39211. */
  url: string;
  /** Resolves when the engine has started (or rejects with its start-up error). */
  engineStarted: Promise<Engine>;
  reload(): ReturnType<typeof reloadModels>;
  /**
   * Graceful stop: readiness false at once, SHUTDOWN_DELAY_SECONDS of still listening, then
   * `app.close()` (the listener closes, accepted requests finish, then the engine and the store close
   * themselves in their onClose hooks). Rejects when that takes longer than `timeoutMs`.
   */
  shutdown(timeoutMs?: number): Promise<void>;
}

/**
 * Listen first; the engine plugin starts the engine once the server listens, so probes answer
 * (startupz 503, livez 200) while models load.
 */
export async function startService(config: ServiceConfig, opts: { logger?: Logger } = {}): Promise<Service> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const app = await buildApp({ config, logger });
  const url = await app.listen({ port: config.port, host: config.host });
  logger.info(
    {
      url,
      store: app.store.kind,
      auth: config.apiToken ? 'bearer' : 'off',
      provider: config.provider,
      workers: config.workers,
      intraOpThreads: config.intraOpThreads,
      intraOpSpinning: config.intraOpSpinning,
      maxBatch: config.maxBatch,
      maxDelayMs: config.maxDelayMs,
      maxQueue: config.maxQueue,
    },
    'listening; loading models',
  );

  let stopping: Promise<void> | undefined;
  const shutdown = (timeoutMs = (config.drainTimeoutSeconds + config.shutdownDelaySeconds) * 1000): Promise<void> => {
    stopping ??= (async () => {
      app.lifecycle.beginDrain();
      logger.info({ queueDepth: app.lifecycle.engine?.queueDepth() ?? 0 }, 'draining: readiness off, finishing accepted requests');
      // Readiness is already false; keep accepting while the endpoint removal propagates.
      if (config.shutdownDelaySeconds > 0) await new Promise((r) => setTimeout(r, config.shutdownDelaySeconds * 1000));
      await withDeadline(app.close(), Math.max(0, timeoutMs - config.shutdownDelaySeconds * 1000), 'drain');
      logger.info('stopped');
    })();
    return stopping;
  };

  return {
    app,
    lifecycle: app.lifecycle,
    store: app.store,
    metrics: app.metrics,
    url,
    engineStarted: app.engineStarted,
    reload: () => reloadModels(app),
    shutdown,
  };
}

/** `work`, or a rejection naming `what` once `ms` have passed. */
async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
