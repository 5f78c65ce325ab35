import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryResultStore } from './memory.ts';
import type { StoredResult } from './types.ts';

const result = (id: string): StoredResult => ({
  id,
  createdAt: new Date().toISOString(),
  expiresAt: new Date().toISOString(),
  model: { name: 'm', version: '1', executionProvider: 'cpu' },
  image: { rows: 2, columns: 2, frame: 0, numberOfFrames: 1, transferSyntax: { uid: '1.2.840.10008.1.2.1', name: 'Explicit VR Little Endian' }, sopInstanceUid: null, modality: null },
  masks: [],
  timings: { decodeMs: 0, preprocessMs: 0, queueMs: 0, inferenceMs: 0, postprocessMs: 0, totalMs: 0 },
});

describe('MemoryResultStore', () => {
  it('returns what was put, with its preview', async () => {
    const s = new MemoryResultStore({ max: 10, ttlSeconds: 60 });
    const preview = { width: 2, height: 1, data: new Uint8Array([1, 2]) };
    await s.put(result('a'), preview);
    assert.equal((await s.get('a'))?.id, 'a');
    assert.deepEqual(await s.getPreview('a'), preview);
    assert.equal(await s.get('b'), undefined);
  });

  it('evicts the least recently used entry beyond max', async () => {
    const s = new MemoryResultStore({ max: 2, ttlSeconds: 60 });
    await s.put(result('a'), undefined);
    await s.put(result('b'), undefined);
    await s.get('a');
    await s.put(result('c'), undefined);
    assert.equal(await s.get('b'), undefined);
    assert.ok(await s.get('a'));
    assert.ok(await s.get('c'));
  });

  it('expires entries after the TTL', async () => {
    const s = new MemoryResultStore({ max: 10, ttlSeconds: 1 });
    await s.put(result('a'), undefined);
    assert.ok(await s.get('a'));
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(await s.get('a'), undefined);
    assert.equal(await s.getPreview('a'), undefined);
  });
});
