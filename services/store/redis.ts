import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CircuitBreaker, CircuitOpenError } from './breaker.ts';
import { StoreUnavailableError, type Preview, type ResultStore, type StoredResult } from './types.ts';

export interface RedisStoreOptions {
  /** A command not answered within this fails (and counts against the breaker). Default 500 ms. */
  commandTimeoutMs?: number;
  /** Consecutive failures that open the breaker. Default 2. */
  breakerThreshold?: number;
  /** First cool-down of an open breaker; doubled after each failed trial, up to 30 s. Default 1000 ms. */
  breakerCooldownMs?: number;
}

const PREFIX = 'unetseg:';
const resultKey = (id: string) => `${PREFIX}result:${id}`;
const previewKey = (id: string) => `${PREFIX}preview:${id}`;
const segKey = (id: string) => `${PREFIX}seg:${id}`;

/**
 * Shared store for several replicas: the result as JSON and the preview as raw bytes (4-byte
 * big-endian width, 4-byte height, then pixels), written in one MULTI with the same EX so they
 * expire together.
 *
 * A Redis outage costs stored results, never request latency (issue 15, defect 5): there is no
 * offline queue (a command while disconnected fails at once), a command that gets no answer fails
 * after `commandTimeoutMs` (a hung server), and a circuit breaker (breaker.ts) makes every call fail
 * at once after two consecutive failures until a cool-down passes; then one call tries Redis again,
 * and its success closes the breaker. ioredis reconnects on its own meanwhile.
 */
export class RedisResultStore implements ResultStore {
  readonly kind = 'redis' as const;
  private readonly redis: Redis;
  private lastErrorLog = 0;
  private readonly breaker: CircuitBreaker;

  constructor(
    url: string,
    private readonly ttlSeconds: number,
    private readonly log: Pick<Logger, 'warn' | 'info'>,
    opts: RedisStoreOptions = {},
  ) {
    this.breaker = new CircuitBreaker({ threshold: opts.breakerThreshold ?? 2, cooldownMs: opts.breakerCooldownMs ?? 1000, maxCooldownMs: 30_000 });
    this.redis = new Redis(url, {
      lazyConnect: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
      commandTimeout: opts.commandTimeoutMs ?? 500,
      // While disconnected a command fails at once instead of waiting for the reconnect.
      enableOfflineQueue: false,
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

  /** One Redis call through the breaker; every failure is a StoreUnavailableError naming `what`. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await this.breaker.run(what, async () => {
        if (this.redis.status !== 'ready') throw new Error(`redis is not connected (${this.redis.status})`);
        return fn();
      });
    } catch (e) {
      const retryAfterSeconds = e instanceof CircuitOpenError ? e.retryAfterMs / 1000 : 1;
      throw new StoreUnavailableError(`could not ${what}: ${(e as Error).message}`, { cause: e, retryAfterSeconds });
    }
  }

  async put(result: StoredResult, preview: Preview | undefined): Promise<void> {
    await this.call('store result', async () => {
      const tx = this.redis.multi().set(resultKey(result.id), JSON.stringify(result), 'EX', this.ttlSeconds);
      if (preview) tx.set(previewKey(result.id), encodePreview(preview), 'EX', this.ttlSeconds);
      const replies = await tx.exec();
      const failed = replies?.find(([err]) => err);
      if (!replies || failed) throw failed?.[0] ?? new Error('transaction aborted');
    });
  }

  async get(id: string): Promise<StoredResult | undefined> {
    const raw = await this.call('read result', () => this.redis.get(resultKey(id)));
    return raw === null ? undefined : (JSON.parse(raw) as StoredResult);
  }

  async getPreview(id: string): Promise<Preview | undefined> {
    const raw = await this.call('read preview', () => this.redis.getBuffer(previewKey(id)));
    return raw === null ? undefined : decodePreview(raw);
  }

  async putSeg(id: string, bytes: Uint8Array): Promise<void> {
    await this.call('store SEG', async () => {
      // Expires with the result: the remaining TTL of the result's key (nothing is kept past it).
      const ttl = await this.redis.ttl(resultKey(id));
      if (ttl > 0) await this.redis.set(segKey(id), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'EX', ttl);
    });
  }

  async getSeg(id: string): Promise<Uint8Array | undefined> {
    const raw = await this.call('read SEG', () => this.redis.getBuffer(segKey(id)));
    return raw === null ? undefined : new Uint8Array(raw);
  }

  /** Connected and the breaker closed (or about to try again). */
  healthy(): boolean {
    return this.redis.status === 'ready' && this.breaker.state !== 'open';
  }

  /** The breaker's state, for tests and logs. */
  breakerState(): 'closed' | 'open' | 'half-open' {
    return this.breaker.state;
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
