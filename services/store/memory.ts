import { LRUCache } from 'lru-cache';
import type { Preview, ResultStore, StoredResult } from './types.ts';

interface Entry {
  result: StoredResult;
  preview: Preview | undefined;
  seg?: Uint8Array;
}

/** Single-replica store: an LRU bounded by entry count, each entry expiring after the TTL. */
export class MemoryResultStore implements ResultStore {
  readonly kind = 'memory' as const;
  private readonly cache: LRUCache<string, Entry>;

  constructor(opts: { max: number; ttlSeconds: number }) {
    this.cache = new LRUCache<string, Entry>({ max: opts.max, ttl: opts.ttlSeconds * 1000, ttlAutopurge: false });
  }

  async put(result: StoredResult, preview: Preview | undefined): Promise<void> {
    this.cache.set(result.id, { result, preview });
  }

  async get(id: string): Promise<StoredResult | undefined> {
    return this.cache.get(id)?.result;
  }

  async getPreview(id: string): Promise<Preview | undefined> {
    return this.cache.get(id)?.preview;
  }

  async putSeg(id: string, bytes: Uint8Array): Promise<void> {
    // Attached to the result's entry (never refreshing its TTL), so both expire together.
    const entry = this.cache.get(id, { updateAgeOnGet: false });
    if (entry) entry.seg = bytes;
  }

  async getSeg(id: string): Promise<Uint8Array | undefined> {
    return this.cache.get(id)?.seg;
  }

  healthy(): boolean {
    return true;
  }

  async close(): Promise<void> {
    this.cache.clear();
  }
}
