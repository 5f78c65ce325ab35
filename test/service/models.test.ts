/**
 * Model repository operations through HTTP: reload (POST /admin/reload and SIGHUP) picks up a new
 * version, a broken newer version leaves the old one serving, and CUDA requested on a machine
 * without a GPU falls back to CPU and says so in /models, /metrics and the segment response.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeModelRepository } from '../helpers/model-fixture.ts';
import { modelRepository, postDicom, SMALL_MODEL, spawnServer, startInProcess, testDicom, waitFor, type InProcess } from './helpers.ts';

type Models = { models: Array<{ name: string; version: string; versions: string[]; ready: boolean; executionProvider: string; requestedExecutionProvider: string; error?: string }> };

describe('model reload', () => {
  let repo: { dir: string; remove: () => Promise<void> };
  let srv: InProcess;
  before(async () => {
    repo = await modelRepository([SMALL_MODEL]);
    srv = await startInProcess({ MODEL_REPOSITORY: repo.dir });
  });
  after(async () => {
    await srv?.close();
    await repo?.remove();
  });

  it('keeps the old version serving when a new one is broken, and switches to a good one', async () => {
    // Version 2: a manifest whose ONNX does not match its checksum.
    await makeModelRepository(repo.dir, [{ ...SMALL_MODEL, version: '2', replaceOnnx: new Uint8Array([1, 2, 3, 4]) }]);
    const r = await fetch(`${srv.url}/admin/reload`, { method: 'POST' });
    assert.equal(r.status, 200);
    const outcome = (await r.json()) as { loaded: string[]; failed: Array<{ model: string; error: string }> };
    assert.equal(outcome.failed.length, 1);
    assert.match(outcome.failed[0]!.model, /^tiny/);
    // Defect 8: the failure names model and version, never the repository's path.
    assert.ok(!outcome.failed[0]!.error.includes(repo.dir), outcome.failed[0]!.error);
    assert.doesNotMatch(JSON.stringify(outcome), /\/tmp\//);
    const tiny = (await (await fetch(`${srv.url}/models/tiny`)).json()) as Models['models'][number];
    assert.equal(tiny.version, '1');
    assert.equal(tiny.ready, true);
    assert.deepEqual(tiny.versions, ['1', '2']);
    const seg = await postDicom(srv.url, testDicom());
    assert.equal(seg.status, 200);
    assert.equal(((await seg.json()) as { model: { version: string } }).model.version, '1');
    // Asking for the broken version explicitly is 409 MODEL_INVALID naming it and the fault, no path.
    const broken = await postDicom(srv.url, testDicom(), '?model=tiny:2');
    assert.equal(broken.status, 409);
    assert.match(broken.headers.get('content-type') ?? '', /problem\+json/);
    const bp = (await broken.json()) as { code: string; detail: string };
    assert.equal(bp.code, 'MODEL_INVALID');
    assert.match(bp.detail, /tiny:2/);
    assert.ok(!bp.detail.includes(repo.dir), bp.detail);
    const v2 = (await (await fetch(`${srv.url}/models/tiny?version=2`)).json()) as { status: string; error: string; sha256: string | null };
    assert.equal(v2.status, 'invalid');
    assert.ok(!v2.error.includes(repo.dir), v2.error);
    assert.equal((await fetch(`${srv.url}/readyz`)).status, 200);

    // Version 3, good: reload makes it the active one.
    await makeModelRepository(repo.dir, [{ ...SMALL_MODEL, version: '3', seed: 11 }]);
    const again = (await (await fetch(`${srv.url}/admin/reload`, { method: 'POST' })).json()) as { loaded: string[] };
    assert.ok(again.loaded.includes('tiny:3'), JSON.stringify(again));
    const seg3 = await postDicom(srv.url, testDicom());
    assert.equal(((await seg3.json()) as { model: { version: string } }).model.version, '3');
    const meta = (await (await fetch(`${srv.url}/v2/models/tiny`)).json()) as { versions: string[] };
    assert.deepEqual(meta.versions, ['1', '2', '3']);
  });
});

describe('SIGHUP and CUDA fallback (real process)', () => {
  let repo: { dir: string; remove: () => Promise<void> };
  before(async () => {
    repo = await modelRepository([SMALL_MODEL]);
  });
  after(async () => {
    await repo?.remove();
  });

  it('falls back to CPU when CUDA is requested without a GPU, reports it, and reloads on SIGHUP', async () => {
    const srv = await spawnServer({ MODEL_REPOSITORY: repo.dir, EXECUTION_PROVIDER: 'cuda' });
    try {
      await waitFor(srv.url);
      const models = (await (await fetch(`${srv.url}/models`)).json()) as Models;
      // The fallback is asserted only where it happens: on a CUDA host the model serves on CUDA.
      const provider = models.models[0]!.executionProvider;
      assert.ok(provider === 'cpu' || provider === 'cuda', provider);
      assert.equal(models.models[0]!.requestedExecutionProvider, 'cuda');
      const metrics = await (await fetch(`${srv.url}/metrics`)).text();
      assert.match(metrics, new RegExp(`unet_model_execution_provider_info\\{model="tiny",version="1",provider="${provider}",requested="cuda"\\} 1`));
      const seg = await postDicom(srv.url, testDicom());
      assert.equal(((await seg.json()) as { model: { executionProvider: string } }).model.executionProvider, provider);
      if (provider === 'cpu') assert.match(srv.stdout(), /CUDA requested but not available; serving on CPU/);
      else assert.doesNotMatch(srv.stdout(), /CUDA requested but not available/);

      await makeModelRepository(repo.dir, [{ ...SMALL_MODEL, version: '2', seed: 2 }]);
      srv.child.kill('SIGHUP');
      const deadline = Date.now() + 15_000;
      let version = '1';
      while (version !== '2' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        version = ((await (await fetch(`${srv.url}/models/tiny`)).json()) as { version: string }).version;
      }
      assert.equal(version, '2');
      assert.match(srv.stdout(), /"msg":"model reload finished"/);
    } finally {
      srv.child.kill('SIGTERM');
      assert.equal((await srv.exit).code, 0);
    }
  });
});
