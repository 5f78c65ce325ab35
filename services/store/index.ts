import type { Logger } from 'pino';
import { MemoryResultStore } from './memory.ts';
import { RedisResultStore } from './redis.ts';
import type { ResultStore } from './types.ts';

export * from './types.ts';
export { MemoryResultStore } from './memory.ts';
export { RedisResultStore } from './redis.ts';

/** Redis when a URL is configured (results shared by replicas), else the in-process LRU. */
export function createResultStore(
  opts: { redisUrl?: string; ttlSeconds: number; max: number },
  log: Pick<Logger, 'warn' | 'info'>,
): ResultStore {
  if (opts.redisUrl) return new RedisResultStore(opts.redisUrl, opts.ttlSeconds, log);
  return new MemoryResultStore({ max: opts.max, ttlSeconds: opts.ttlSeconds });
}
