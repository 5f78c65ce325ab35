/**
 * Issue 15, defect 5: a Redis outage must not slow requests down. Against a real redis-server that is
 * hung (SIGSTOP), killed and restarted on the same port: every POST /segment keeps answering 200 with
 * `stored: false` and without the old ~2 s per request (offline queue + 2 s command timeout), reads
 * of stored results fail fast with 503 STORE_UNAVAILABLE + Retry-After, and once Redis is back
 * results are stored again without any restart (the circuit breaker's trial call closes it).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { freePort, modelRepository, postDicom, redisOn, startInProcess, tempDir, testDicom, type InProcess } from './helpers.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('Redis outage: fail fast, keep answering, recover on its own', () => {
  let repo: { dir: string; remove: () => Promise<void> };
  let data: { dir: string; remove: () => Promise<void> };
  let port: number;
  let redis: ChildProcess;
  let srv: InProcess;
  const dicom = testDicom();
  const post = async () => {
    const t0 = performance.now();
    const r = await postDicom(srv.url, dicom);
    const body = (await r.json()) as { id: string; stored: boolean };
    return { status: r.status, stored: body.stored, id: body.id, ms: performance.now() - t0 };
  };

  before(async () => {
    repo = await modelRepository();
    data = await tempDir('redis-outage');
    port = await freePort();
    redis = await redisOn(port, data.dir);
    srv = await startInProcess({ MODEL_REPOSITORY: repo.dir, REDIS_URL: `redis://127.0.0.1:${port}`, LOG_LEVEL: 'silent' });
  });
  after(async () => {
    await srv?.close();
    if (redis && redis.exitCode === null && redis.signalCode === null) {
      redis.kill('SIGCONT');
      redis.kill('SIGKILL');
    }
    await data?.remove();
    await repo?.remove();
  });

  it('serves with stored: false at normal speed while Redis hangs or is gone, then stores again once it is back', async () => {
    const base: number[] = [];
    let stored = '';
    for (let i = 0; i < 5; i++) {
      const r = await post();
      assert.equal(r.status, 200);
      assert.equal(r.stored, true);
      base.push(r.ms);
      stored = r.id;
    }

    // Hung: connected, but nothing answers. Only the first calls wait for the command timeout.
    redis.kill('SIGSTOP');
    const hung: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await post();
      assert.equal(r.status, 200);
      assert.equal(r.stored, false);
      hung.push(r.ms);
    }
    const t0 = performance.now();
    const read = await fetch(`${srv.url}/segmentations/${stored}`);
    const readMs = performance.now() - t0;
    assert.equal(read.status, 503);
    assert.equal(((await read.json()) as { code: string }).code, 'STORE_UNAVAILABLE');
    assert.ok(Number(read.headers.get('retry-after')) >= 1);
    assert.ok(readMs < 300, `a read fails fast while the breaker is open (${readMs.toFixed(0)} ms)`);

    // Gone: the process dies.
    redis.kill('SIGKILL');
    await new Promise((r) => redis.once('exit', r));
    const gone: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await post();
      assert.equal(r.status, 200);
      assert.equal(r.stored, false);
      gone.push(r.ms);
    }
    const mb = median(base);
    // Before the fix every request paid ~2000 ms; now the median is the baseline's order.
    assert.ok(median(hung) < mb + 300, `hung: median ${median(hung).toFixed(0)} ms vs baseline ${mb.toFixed(0)} ms (${hung.map((x) => x.toFixed(0)).join(', ')})`);
    assert.ok(median(gone) < mb + 300, `gone: median ${median(gone).toFixed(0)} ms vs baseline ${mb.toFixed(0)} ms`);
    assert.ok(Math.max(...hung, ...gone) < 1500, `worst ${Math.max(...hung, ...gone).toFixed(0)} ms`);
    const ready = (await (await fetch(`${srv.url}/readyz`)).json()) as { store: { healthy: boolean } };
    assert.equal(ready.store.healthy, false);

    // Back on the same port: stored again without a restart of the service.
    redis = await redisOn(port, data.dir);
    const end = Date.now() + 15_000;
    let r = await post();
    while (!r.stored && Date.now() < end) {
      await new Promise((res) => setTimeout(res, 250));
      r = await post();
    }
    assert.equal(r.stored, true, 'results are stored again once Redis is back');
    const got = await fetch(`${srv.url}/segmentations/${r.id}`);
    assert.equal(got.status, 200);
    await got.arrayBuffer();
  });
});
