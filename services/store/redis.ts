import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { StoreUnavailableError, type Preview, type ResultStore, type StoredResult } from './types.ts';

const PREFIX = 'unetseg:';
const resultKey = (id: string) => `${PREFIX}result:${id}`;
const previewKey = (id: string) => `${PREFIX}preview:${id}`;

/**
 * Shared store for several replicas: the result as JSON and the preview as raw bytes (4-byte
 * big-endian width, 4-byte height, then pixels), written in one MULTI with the same EX so they
 * expire together. Commands fail fast while Redis is unreachable instead of queueing forever, so a
 * Redis outage costs stored results, not request latency.
 */
export class RedisResultStore implements ResultStore {
  readonly kind = 'redis' as const;
  private readonly redis: Redis;
  private lastErrorLog = 0;

  constructor(
    url: string,
    private readonly ttlSeconds: number,
    private readonly log: Pick<Logger, 'warn' | 'info'>,
  ) {
    this.redis = new Redis(url, {
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      commandTimeout: 2000,
      enableOfflineQueue: true,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    this.redis.on('error', (err: Error) => {
      // Reconnect attempts repeat the same error; one line per 10 s is enough.
      const now = Date.now();
      if (now - this.lastErrorLog > 10_000) {
        this.lastErrorLog = now;
        this.log.warn({ err: { message: err.message } }, 'redis result store error');
      }
    });
    this.redis.on('ready', () => this.log.info('redis result store connected'));
  }

  /** Resolves once connected (or rejects after `timeoutMs`), so start-up can report a bad REDIS_URL early. */
  async waitReady(timeoutMs = 5000): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new StoreUnavailableError(`redis not reachable within ${timeoutMs} ms`));
      }, timeoutMs);
      const onReady = () => {
        cleanup();
        resolve();
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
      };
      this.redis.on('ready', onReady);
    });
  }

  async put(result: StoredResult, preview: Preview | undefined): Promise<void> {
    const tx = this.redis.multi().set(resultKey(result.id), JSON.stringify(result), 'EX', this.ttlSeconds);
    if (preview) tx.set(previewKey(result.id), encodePreview(preview), 'EX', this.ttlSeconds);
    try {
      const replies = await tx.exec();
      const failed = replies?.find(([err]) => err);
      if (!replies || failed) throw failed?.[0] ?? new Error('transaction aborted');
    } catch (e) {
      throw new StoreUnavailableError(`could not store result: ${(e as Error).message}`, { cause: e });
    }
  }

  async get(id: string): Promise<StoredResult | undefined> {
    let raw: string | null;
    try {
      raw = await this.redis.get(resultKey(id));
    } catch (e) {
      throw new StoreUnavailableError(`could not read result: ${(e as Error).message}`, { cause: e });
    }
    return raw === null ? undefined : (JSON.parse(raw) as StoredResult);
  }

  async getPreview(id: string): Promise<Preview | undefined> {
    let raw: Buffer | null;
    try {
      raw = await this.redis.getBuffer(previewKey(id));
    } catch (e) {
      throw new StoreUnavailableError(`could not read preview: ${(e as Error).message}`, { cause: e });
    }
    return raw === null ? undefined : decodePreview(raw);
  }

  healthy(): boolean {
    return this.redis.status === 'ready';
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

export function encodePreview(p: Preview): Buffer {
  const buf = Buffer.allocUnsafe(8 + p.data.length);
  buf.writeUInt32BE(p.width, 0);
  buf.writeUInt32BE(p.height, 4);
  buf.set(p.data, 8);
  return buf;
}

export function decodePreview(buf: Buffer): Preview | undefined {
  if (buf.length < 8) return undefined;
  const width = buf.readUInt32BE(0);
  const height = buf.readUInt32BE(4);
  if (buf.length !== 8 + width * height) return undefined;
  return { width, height, data: new Uint8Array(buf.buffer, buf.byteOffset + 8, width * height) };
}
