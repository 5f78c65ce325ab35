/**
 * Model integrity and model state: a replacement worker serves the weights verified at load, never a
 * file swapped on disk since; reload compares the file with what is loaded; broken versions are
 * listed with their error, answer 409 MODEL_INVALID, and readiness follows the default model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chestDicom } from '../../synth/index.ts';
import { makeModelRepository } from '../../test/helpers/model-fixture.ts';
import { ModelInvalidError } from './errors.ts';
import { startEngine } from './testing/engine-fixtures.ts';
import type { WorkerPool } from './worker-pool.ts';

const dicom = (await chestDicom(5, { size: 128, lesions: 1 })).bytes;
const poolOf = (e: unknown) => (e as { pool: WorkerPool }).pool;

async function until(cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a replacement worker serves the verified weights, not a file swapped on disk; reload notices the swap and the restore', async () => {
  const fx = await startEngine([{ name: 'unet', version: '1', size: 64, seed: 1, minArea: 0, threshold: 0.5 }], { workers: 1 });
  const other = await mkdtemp(join(tmpdir(), 'integrity-'));
  try {
    const onnx = join(fx.dir, 'unet', '1', 'model.onnx');
    const good = await readFile(onnx);
    const verified = fx.engine.model('unet')!;
    assert.equal(verified.status, 'ready');
    assert.equal(verified.sha256, verified.manifest.onnx.sha256);
    const want = (await fx.engine.segment({ dicom, threshold: 0.5 })).masks[0]!;

    // Same graph and shapes, other weights: it would load and serve if it were ever read unverified.
    const [evil] = await makeModelRepository(other, [{ name: 'unet', version: '1', size: 64, seed: 99 }]);
    await copyFile(evil!.onnxPath, onnx);

    const pool = poolOf(fx.engine);
    await pool.members()[0]!.worker.terminate();
    await until(() => pool.crashCount() === 1 && pool.liveCount() === 1);
    const after = (await fx.engine.segment({ dicom, threshold: 0.5 })).masks[0]!;
    assert.deepEqual(after.mask.data, want.mask.data, 'the replacement serves the verified weights');
    assert.equal(fx.engine.model('unet')!.sha256, verified.sha256);

    // Reload: the file no longer matches; the verified session keeps serving, the mismatch is named.
    const r1 = await fx.engine.reload();
    assert.deepEqual(r1.loaded, []);
    assert.match(r1.failed.find((f) => f.model === 'unet:1')?.error ?? '', /unet:1: sha256 mismatch/);
    const info = fx.engine.model('unet')!;
    assert.equal(info.version, '1');
    assert.equal(info.sha256, verified.sha256);
    assert.match(info.error ?? '', /sha256 mismatch.*still serving the weights verified at/);
    assert.deepEqual((await fx.engine.segment({ dicom, threshold: 0.5 })).masks[0]!.mask.data, want.mask.data);

    // Restored: the reload finds the file equal to what is loaded; the error is gone.
    await writeFile(onnx, good);
    const r2 = await fx.engine.reload();
    assert.deepEqual(r2.failed, []);
    assert.equal(fx.engine.model('unet')!.error, undefined);
    assert.deepEqual((await fx.engine.segment({ dicom, threshold: 0.5 })).masks[0]!.mask.data, want.mask.data);

    // A real in-place update (file and manifest both changed) loads the new weights under the version.
    const manifestPath = join(fx.dir, 'unet', '1', 'model.json');
    const m = JSON.parse(await readFile(manifestPath, 'utf8'));
    m.onnx.sha256 = evil!.manifest.onnx.sha256;
    await copyFile(evil!.onnxPath, onnx);
    await writeFile(manifestPath, JSON.stringify(m));
    const r3 = await fx.engine.reload();
    assert.deepEqual(r3.loaded, ['unet:1']);
    assert.equal(fx.engine.model('unet')!.sha256, evil!.manifest.onnx.sha256);
  } finally {
    await fx.cleanup();
    await rm(other, { recursive: true, force: true });
  }
});

test('broken versions are listed with their error and answer 409 MODEL_INVALID; readiness follows the default model', async () => {
  const models = [
    { name: 'unet', version: '1', size: 32 },
    // An older version whose manifest does not validate.
    { name: 'unet', version: '0', size: 32, editManifest: (m: Record<string, any>) => delete m.input },
    // A model whose only manifest does not validate: listed, not hidden.
    { name: 'bad', version: '1', size: 32, editManifest: (m: Record<string, any>) => (m.schemaVersion = 99) },
    // A checksum mismatch.
    { name: 'sum', version: '1', size: 32, replaceOnnx: new Uint8Array([1, 2, 3]) },
  ];
  const fx = await startEngine(models, { workers: 1, defaultModel: 'unet' });
  try {
    assert.equal(fx.engine.ready(), true, 'the default model is ready; the others are listed as broken');
    assert.deepEqual(fx.engine.readiness(), { ready: true });
    const listing = new Map(fx.engine.listing().map((m) => [m.name, m]));
    const bad = listing.get('bad')!;
    assert.ok(bad, '/models lists a model whose manifest is invalid');
    assert.equal(bad.manifest, null);
    assert.equal(bad.status, 'invalid');
    assert.equal(bad.ready, false);
    assert.match(bad.error ?? '', /bad:1/);
    assert.ok(!fx.engine.models().some((m) => m.name === 'bad'), 'models() keeps only entries with a manifest');
    assert.equal(listing.get('sum')!.status, 'invalid');
    assert.match(listing.get('sum')!.error ?? '', /sha256 mismatch/);
    assert.equal(fx.engine.describe('unet', '0')!.status, 'invalid');
    assert.equal(fx.engine.describe('unet', '1')!.status, 'ready');

    for (const [req, pattern] of [
      [{ model: 'bad' }, /bad:1/],
      [{ model: 'sum' }, /sha256 mismatch/],
      [{ model: 'unet', version: '0' }, /unet:0/],
    ] as const) {
      await assert.rejects(fx.engine.segment({ dicom, ...req }), (e: unknown) => {
        assert.ok(e instanceof ModelInvalidError, `got ${String(e)}`);
        assert.equal(e.code, 'MODEL_INVALID');
        assert.equal(e.status, 409);
        assert.match(e.message, pattern);
        return true;
      });
    }
    assert.equal((await fx.engine.segment({ dicom })).model.name, 'unet');
  } finally {
    await fx.cleanup();
  }

  const fx2 = await startEngine(models, { workers: 1, defaultModel: 'bad' });
  try {
    assert.equal(fx2.engine.ready(), false, 'the default model failed to load: not ready');
    const r = fx2.engine.readiness();
    assert.equal(r.ready, false);
    assert.match(!r.ready ? r.reason : '', /default model bad is not ready: bad:1/);
    assert.equal((await fx2.engine.segment({ dicom, model: 'unet' })).model.name, 'unet', 'the others still serve');
  } finally {
    await fx2.cleanup();
  }
});
