/**
 * With prepare workers (the CUDA plan, or PREPARE_WORKERS on CPU) a batch leaves the inference worker
 * as raw network outputs and each image is post-processed in a prepare worker, so the inference lane
 * holds session.run alone. What comes back must not depend on where post-processing ran: masks,
 * probabilities, TTA and raw-tensor requests equal the fused path's, byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chestDicom } from '../../synth/index.ts';
import { InferenceError } from './errors.ts';
import type { ModelRegistry } from './registry.ts';
import { startEngine } from './testing/engine-fixtures.ts';
import type { WorkerPool } from './worker-pool.ts';
import type { PostprocessMsg } from './worker-protocol.ts';

const dicom = (await chestDicom(5, { size: 160, lesions: 2 })).bytes;

/** Counts the task types a pool is handed (the pool itself is not changed). */
function spy(pool: WorkerPool): Map<string, number> {
  const seen = new Map<string, number>();
  const run = pool.run.bind(pool);
  pool.run = ((msg: { type: string; raw?: boolean }, ...rest: Parameters<WorkerPool['run']> extends [unknown, ...infer R] ? R : never) => {
    const k = msg.type + (msg.raw ? ':raw' : '');
    seen.set(k, (seen.get(k) ?? 0) + 1);
    return run(msg, ...rest);
  }) as WorkerPool['run'];
  return seen;
}

test('with prepare workers, post-processing runs there and gives the fused path\'s masks and probabilities (plain, TTA, probabilities only, raw tensors)', async () => {
  const models = [{ name: 'unet', version: '1', size: 64 }];
  const fused = await startEngine(models, { workers: 1, prepareWorkers: 0 });
  const split = await startEngine(models, { workers: 1, prepareWorkers: 1 });
  try {
    const internals = split.engine as unknown as { pool: WorkerPool; preparePool: WorkerPool };
    const inferTasks = spy(internals.pool);
    const prepareTasks = spy(internals.preparePool);

    for (const req of [{ dicom }, { dicom, tta: true }, { dicom, probabilities: true }, { dicom, masks: false, probabilities: true }, { dicom, rules: { threshold: 0.3 } }]) {
      const want = await fused.engine.segment({ ...req });
      const got = await split.engine.segment({ ...req });
      const what = JSON.stringify({ ...req, dicom: undefined });
      // Every mask field: label, pixels, area, boxes, what the rules removed.
      assert.deepEqual(got.masks, want.masks, `masks ${what}`);
      assert.deepEqual(got.probabilities, want.probabilities, `probabilities ${what}`);
      assert.ok(got.timings.postprocessMs > 0, 'the post-processing time is the prepare worker\'s');
    }

    const tensor = new Float32Array(3 * 64 * 64).map((_, i) => Math.sin(i / 97));
    const want = await fused.engine.infer({ tensor: tensor.slice(), outputs: { masks: true, probabilities: true } });
    const got = await split.engine.infer({ tensor: tensor.slice(), outputs: { masks: true, probabilities: true } });
    assert.deepEqual(got.images.map((i) => i.masks?.map((m) => m.mask.data)), want.images.map((i) => i.masks?.map((m) => m.mask.data)));
    assert.deepEqual(got.images.map((i) => i.probabilities), want.images.map((i) => i.probabilities));

    assert.equal(inferTasks.get('infer'), undefined, 'no batch was post-processed in the inference worker');
    assert.ok((inferTasks.get('infer:raw') ?? 0) >= 6, `batches went raw: ${JSON.stringify([...inferTasks])}`);
    // 5 segment requests + 3 tensor images; TTA's pair is one entry.
    assert.equal(prepareTasks.get('postprocess'), 8, `post-processing tasks: ${JSON.stringify([...prepareTasks])}`);
    assert.equal(prepareTasks.get('prepare'), 5);
  } finally {
    await Promise.all([fused.cleanup(), split.cleanup()]);
  }
});

test('a post-processing task the prepare worker refuses (an output of the wrong size) fails as a coded InferenceError; the worker and the engine serve on', async () => {
  const fx = await startEngine([{ name: 'unet', version: '1', size: 64 }], { workers: 1, prepareWorkers: 1 });
  try {
    const first = await fx.engine.segment({ dicom });
    const internals = fx.engine as unknown as { preparePool: WorkerPool; registry: ModelRegistry };
    const lm = internals.registry.get('unet:1')!;
    const post: PostprocessMsg = { type: 'postprocess', key: lm.entry.key, sha256: lm.entry.sha256, manifest: lm.entry.manifest, outputs: [new Float32Array(7)], rows: 64, cols: 64, rules: {}, wants: { masks: true, probabilities: false } };
    await assert.rejects(internals.preparePool.run(post, [], { timeoutMs: 5000 }), (e: unknown) => e instanceof InferenceError && /output has 7 values, expected 1x64x64/.test(e.message));
    assert.equal(internals.preparePool.liveCount(), 1, 'the prepare worker lives on');
    assert.deepEqual((await fx.engine.segment({ dicom })).masks[0]!.mask.data, first.masks[0]!.mask.data, 'serves after');
  } finally {
    await fx.cleanup();
  }
});
