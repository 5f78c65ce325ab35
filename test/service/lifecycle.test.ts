/**
 * The real `npm start` process under load: probes stay fast while the inference workers are
 * saturated, and SIGTERM drains (readiness off at once, every accepted request answered 200,
 * exit code 0).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { modelRepository, postDicom, spawnServer, testDicom, waitFor } from './helpers.ts';

/** Big enough that a burst keeps the worker busy for seconds on a small CPU. */
const LOAD_MODEL = { name: 'load', version: '1', size: 192, depth: 3, baseChannels: 16, seed: 5 };

describe('process lifecycle under load', () => {
  let repo: { dir: string; remove: () => Promise<void> };
  before(async () => {
    repo = await modelRepository([LOAD_MODEL]);
  });
  after(async () => {
    await repo?.remove();
  });

  it('answers /livez and /readyz quickly while the workers are saturated', async (t) => {
    const srv = await spawnServer({ MODEL_REPOSITORY: repo.dir, WORKERS: '1', MAX_BATCH: '4', MAX_QUEUE: '256', LOG_LEVEL: 'warn' });
    try {
      await waitFor(srv.url);
      const dicom = testDicom({ rows: 256, columns: 256 });
      let done = false;
      const segmentMs: number[] = [];
      const burst = Promise.all(
        Array.from({ length: 32 }, async () => {
          const t0 = performance.now();
          const r = await postDicom(srv.url, dicom);
          await r.arrayBuffer();
          segmentMs.push(performance.now() - t0);
          return r.status;
        }),
      ).finally(() => {
        done = true;
      });
      const latencies: number[] = [];
      let queued = 0;
      while (!done) {
        for (const path of ['/livez', '/readyz']) {
          const t0 = performance.now();
          const r = await fetch(srv.url + path);
          await r.arrayBuffer();
          latencies.push(performance.now() - t0);
          assert.equal(r.status, 200, path);
        }
        const m = await (await fetch(`${srv.url}/metrics`)).text();
        queued = Math.max(queued, Number(/inference_queue_depth (\d+)/.exec(m)?.[1] ?? 0));
        await new Promise((r) => setTimeout(r, 10));
      }
      const statuses = await burst;
      assert.deepEqual(new Set(statuses), new Set([200]));
      const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
      const [p50, p99, max] = [pct(latencies, 0.5), pct(latencies, 0.99), Math.max(...latencies)];
      const segP50 = pct(segmentMs, 0.5);
      t.diagnostic(
        `probe latency under load: n=${latencies.length} p50=${p50.toFixed(1)} ms p99=${p99.toFixed(1)} ms max=${max.toFixed(1)} ms; ` +
          `segment p50 ${segP50.toFixed(0)} ms; max queue depth seen ${queued}`,
      );
      // Probes were measured while work was queued, not after it drained.
      assert.ok(queued > 0, 'the burst queued work in the engine');
      assert.ok(latencies.length >= 20, 'probes kept answering during the burst');
      // Target: < 50 ms. The typical probe must meet it; the worst one is reported, and only has to
      // beat the inference (a shared CPU can preempt any thread for tens of ms, so the max is a
      // figure to read, not a gate).
      assert.ok(p50 < 50, `probe p50 ${p50.toFixed(1)} ms >= 50 ms`);
      assert.ok(max < segP50, `probe max ${max.toFixed(1)} ms >= segment p50 ${segP50.toFixed(0)} ms: probes waited for inference`);
    } finally {
      srv.child.kill('SIGKILL');
      await srv.exit;
    }
  });

  it('drains on SIGTERM: readiness off at once, every accepted request answered, exit 0', async () => {
    const srv = await spawnServer({ MODEL_REPOSITORY: repo.dir, WORKERS: '1', MAX_BATCH: '4', MAX_QUEUE: '256', SHUTDOWN_DELAY_SECONDS: '1', DRAIN_TIMEOUT_SECONDS: '60' });
    await waitFor(srv.url);
    const dicom = testDicom({ rows: 256, columns: 256 });
    let answered = 0;
    const fire = () =>
      postDicom(srv.url, dicom).then(
        async (r) => {
          const body = await r.text();
          answered++;
          return { status: r.status, body };
        },
        (e: Error & { cause?: { code?: string } }) => ({ status: 0, body: String(e.cause?.code ?? e.message) }),
      );
    const early = Array.from({ length: 24 }, fire);
    while (answered < 3) await new Promise((r) => setTimeout(r, 5));
    srv.child.kill('SIGTERM');

    // Readiness goes false at once; the listener stays open for SHUTDOWN_DELAY_SECONDS.
    await new Promise((r) => setTimeout(r, 100));
    const ready = await fetch(`${srv.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(((await ready.json()) as { phase: string }).phase, 'draining');
    assert.equal((await fetch(`${srv.url}/livez`)).status, 200);
    // Requests that still arrive during the delay are accepted and served.
    const during = Array.from({ length: 4 }, fire);

    const results = await Promise.all([...early, ...during]);
    const exit = await srv.exit;
    const bad = results.filter((r) => r.status !== 200);
    assert.deepEqual(bad, [], 'every accepted request got a 200');
    assert.equal(exit.code, 0, srv.stdout().slice(-2000));
    assert.match(srv.stdout(), /"msg":"draining: readiness off, finishing accepted requests"/);
    assert.match(srv.stdout(), /"msg":"stopped"/);
    // After the exit nothing listens any more.
    await assert.rejects(fetch(`${srv.url}/livez`));
  });
});
