/**
 * Metric hygiene: every metric of ours carries the unet_ prefix, a client's made-up ?model= creates
 * no series (counted as model="unknown"), the queue time is a histogram, the execution provider is an
 * _info metric, and the README's Metrics table documents every metric the server exports.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createMetrics, METRIC_PREFIX, UNKNOWN_MODEL } from '../../services/metrics.ts';
import { modelRepository, postDicom, REPO_ROOT, startInProcess, testDicom, type InProcess } from './helpers.ts';

describe('metrics', () => {
  let repo: { dir: string; remove: () => Promise<void> };
  let srv: InProcess;
  before(async () => {
    repo = await modelRepository();
    srv = await startInProcess({ MODEL_REPOSITORY: repo.dir });
  });
  after(async () => {
    await srv?.close();
    await repo?.remove();
  });
  const scrape = async () => (await fetch(`${srv.url}/metrics`)).text();

  it('bounds the model label: names the server does not serve are "unknown"', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.segmentation('anything', 'error');
    assert.match(await m.registry.metrics(), /unet_segmentations_total\{model="unknown",outcome="error"\} 1/);

    for (let i = 0; i < 5; i++) {
      const r = await postDicom(srv.url, testDicom(), `?model=made-up-${i}`);
      assert.equal(r.status, 404);
      await r.arrayBuffer();
    }
    assert.equal((await postDicom(srv.url, testDicom(), '?model=tiny')).status, 200);
    const text = await scrape();
    assert.doesNotMatch(text, /made-up/);
    assert.match(text, new RegExp(`unet_segmentations_total\\{model="${UNKNOWN_MODEL}",outcome="error"\\} 5`));
    assert.match(text, /unet_segmentations_total\{model="tiny",outcome="ok"\} \d+/);
  });

  it('prefixes every metric of ours, keeps the process defaults standard', async () => {
    const names = new Set([...(await scrape()).matchAll(/^# TYPE (\S+) /gm)].map((x) => x[1]!));
    const ours = [...names].filter((n) => !/^(process|nodejs)_/.test(n));
    assert.ok(ours.length >= 10, ours.join(' '));
    for (const n of ours) assert.ok(n.startsWith(METRIC_PREFIX), n);
    assert.ok(names.has('process_cpu_user_seconds_total'));
  });

  it('has a queue-time histogram and the provider as an _info metric', async () => {
    const b64 = Buffer.from(testDicom()).toString('base64');
    const r = await fetch(`${srv.url}/v2/models/tiny/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'd', shape: [1], datatype: 'BYTES', data: [b64] }] }) });
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    const text = await scrape();
    assert.match(text, /# TYPE unet_inference_queue_seconds histogram/);
    assert.match(text, /unet_inference_queue_seconds_count\{model="tiny"\} [1-9]\d*/);
    assert.match(text, /# TYPE unet_model_execution_provider_info gauge/);
    assert.match(text, /unet_model_execution_provider_info\{model="tiny",version="1",provider="cpu",requested="cpu"\} 1/);
  });

  it("documents every exported metric in the README's Metrics table", async () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Metrics'));
    const names = [...(await scrape()).matchAll(/^# TYPE (\S+) /gm)].map((x) => x[1]!).filter((n) => n.startsWith(METRIC_PREFIX));
    for (const n of names) assert.match(section, new RegExp(`\\| \`${n}\` \\|`), `README Metrics table lacks ${n}`);
  });
});
