import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { Engine, type EngineConfig } from '../../core/engine/index.ts';
import { Lifecycle } from '../lifecycle.ts';

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle;
    /** Resolves when the engine has started (or rejects with its start-up error); starts once the server listens. */
    engineStarted: Promise<Engine>;
  }
}

/**
 * The inference engine behind `app.lifecycle`. It starts once the server listens (so /startupz and
 * /livez answer while models load, which on a large model or a cold GPU can outlast a kubelet's
 * patience) and, when the app closes, drains what was admitted and closes its workers. The onClose
 * hook runs after Fastify has stopped the listener and every in-flight request has its response.
 */
export default fp(
  async (app, opts: { engine: EngineConfig; lifecycle?: Lifecycle }) => {
    const lifecycle = opts.lifecycle ?? new Lifecycle();
    const { config, metrics } = app;
    const log = app.log as Logger;
    let resolve!: (e: Engine) => void;
    let reject!: (e: Error) => void;
    const started = new Promise<Engine>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Callers (main, tests) handle a failed start; no one listening must not crash the process.
    started.catch(() => undefined);
    let starting: Promise<unknown> | undefined;

    app.decorate('lifecycle', lifecycle);
    app.decorate('engineStarted', started);

    app.addHook('onListen', async () => {
      starting ??= Engine.start(opts.engine, log, metrics.observer).then(
        (engine) => {
          lifecycle.attach(engine);
          metrics.setModels(engine.models(), config.provider);
          for (const m of engine.models()) {
            if (config.provider === 'cuda' && m.executionProvider !== 'cuda') {
              log.warn({ model: m.name, version: m.version, provider: m.executionProvider }, 'CUDA requested but not available; serving on CPU');
            }
          }
          if (!engine.ready()) {
            log.warn({ repository: opts.engine.modelRepository }, 'no model could be loaded; /readyz stays 503 until POST /admin/reload or SIGHUP finds one');
          }
          log.info({ models: engine.models().map((m) => ({ name: m.name, version: m.version, ready: m.ready, provider: m.executionProvider })) }, 'serving');
          resolve(engine);
        },
        (err: Error) => {
          lifecycle.startupError = err.message;
          log.error({ err: { message: err.message } }, 'engine failed to start');
          reject(err);
        },
      );
    });

    app.addHook('onClose', async () => {
      lifecycle.beginDrain();
      await starting;
      const engine = lifecycle.engine;
      if (engine) {
        // The listener is closed and every accepted request answered, so nothing new arrives here.
        await engine.drain();
        await engine.close();
      }
      lifecycle.phase = 'stopped';
    });
  },
  { fastify: '5.x', name: 'engine', decorators: { fastify: ['config', 'metrics'] } },
);
