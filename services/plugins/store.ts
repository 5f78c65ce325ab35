import fp from 'fastify-plugin';
import { createResultStore, RedisResultStore, type ResultStore } from '../store/index.ts';

declare module 'fastify' {
  interface FastifyInstance {
    store: ResultStore;
  }
}

/**
 * The result store (Redis when REDIS_URL is set, else the in-process LRU) as `app.store`; closed
 * when the app closes, after the engine (plugins close in reverse order of registration).
 */
export default fp(
  async (app, opts: { store?: ResultStore }) => {
    const c = app.config;
    const store = opts.store ?? createResultStore({ redisUrl: c.redisUrl, ttlSeconds: c.resultTtlSeconds, max: c.resultCacheMax }, app.log.child({ component: 'store' }));
    if (store instanceof RedisResultStore) {
      await store.waitReady(5000).catch((e: Error) => app.log.warn({ err: { message: e.message } }, 'redis not reachable yet; results will not be stored until it is'));
    }
    app.decorate('store', store);
    app.addHook('onClose', async () => {
      await store.close().catch(() => undefined);
    });
  },
  { fastify: '5.x', name: 'result-store', decorators: { fastify: ['config'] } },
);
