/**
 * Results shared through a real redis-server: two `npm start` processes, POST to one and GET (JSON
 * and both PNGs) from the other; results expire after RESULT_TTL_SECONDS; a Redis outage costs the
 * stored copy (stored: false, GET 503) but never the segmentation itself.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { masksEqual } from '../../core/mask.ts';
import { decodeMask } from '../../core/rle/index.ts';
import { modelRepository, postDicom, spawnServer, startRedis, testDicom, waitFor, type Spawned } from './helpers.ts';

describe('Redis result store', () => {
  let redis: { url: string; stop: () => Promise<void> };
  let repo: { dir: string; remove: () => Promise<void> };
  let a: Spawned;
  let b: Spawned;
  before(async () => {
    redis = await startRedis();
    repo = await modelRepository();
    const env = { MODEL_REPOSITORY: repo.dir, REDIS_URL: redis.url, RESULT_TTL_SECONDS: '3', LOG_LEVEL: 'warn' };
    [a, b] = await Promise.all([spawnServer(env), spawnServer(env)]);
    await Promise.all([waitFor(a.url), waitFor(b.url)]);
  });
  after(async () => {
    for (const s of [a, b]) {
      if (s && s.child.exitCode === null) {
        s.child.kill('SIGTERM');
        await s.exit;
      }
    }
    await redis?.stop().catch(() => undefined);
    await repo?.remove();
  });

  it('a result POSTed to one replica is served by the other, then expires', async () => {
    assert.equal(((await (await fetch(`${a.url}/readyz`)).json()) as { store: { kind: string } }).store.kind, 'redis');
    const posted = await postDicom(a.url, testDicom(), '?rleFormat=kaggle&preview=true');
    assert.equal(posted.status, 200);
    const body = (await posted.json()) as { id: string; stored: boolean; masks: Array<{ rle: { counts: string } }> };
    assert.equal(body.stored, true);

    const got = await fetch(`${b.url}/segmentations/${body.id}?rleFormat=coco`);
    assert.equal(got.status, 200);
    const other = (await got.json()) as { id: string; masks: Array<{ rle: { counts: number[] } }> };
    assert.equal(other.id, body.id);
    assert.ok(masksEqual(decodeMask(other.masks[0]!.rle.counts, 'coco', 96, 80), decodeMask(body.masks[0]!.rle.counts, 'kaggle', 96, 80)));
    for (const png of ['mask.png', 'overlay.png']) {
      const r = await fetch(`${b.url}/segmentations/${body.id}/${png}`);
      assert.equal(r.status, 200, png);
      assert.equal(r.headers.get('content-type'), 'image/png');
      await r.arrayBuffer();
    }

    // What Redis holds: JSON + preview with a TTL, and no raw mask or DICOM.
    const client = new Redis(redis.url);
    try {
      const keys = (await client.keys('unetseg:*')).sort();
      assert.deepEqual(keys, [`unetseg:preview:${body.id}`, `unetseg:result:${body.id}`]);
      const ttl = await client.ttl(`unetseg:result:${body.id}`);
      assert.ok(ttl > 0 && ttl <= 3, `ttl ${ttl}`);
      const size = await client.strlen(`unetseg:preview:${body.id}`);
      assert.equal(size, 8 + 96 * 80);
    } finally {
      client.disconnect();
    }

    await new Promise((r) => setTimeout(r, 3500));
    const expired = await fetch(`${b.url}/segmentations/${body.id}`);
    assert.equal(expired.status, 404);
    assert.match(expired.headers.get('content-type') ?? '', /problem\+json/);
  });

  it('keeps segmenting when Redis goes away, and says the result was not stored', async () => {
    await redis.stop();
    const r = await postDicom(a.url, testDicom());
    assert.equal(r.status, 200);
    const body = (await r.json()) as { id: string; stored: boolean };
    assert.equal(body.stored, false);
    assert.equal(r.headers.get('content-location'), null);
    const got = await fetch(`${b.url}/segmentations/${body.id}`);
    assert.equal(got.status, 503);
    assert.equal(((await got.json()) as { code: string }).code, 'STORE_UNAVAILABLE');
    assert.equal((await fetch(`${a.url}/livez`)).status, 200);
  });
});
