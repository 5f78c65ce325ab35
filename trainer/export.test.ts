/**
 * Export gate: a model whose ONNX disagrees with the session's predictions is refused and nothing
 * is written; an agreeing one is written with a manifest that validates and describes the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { parseManifest } from '../core/manifest.ts';
import { PreprocessSpecSchema } from '../core/preprocess/spec.ts';
import { buildUNetOnnx } from './session/training-session.ts';
import type { TrainingSession } from './session/types.ts';
import { exportModel, ParityError, type ManifestInput } from './export.ts';

const S = 16;
const unet = { depth: 1, baseChannels: 4, inChannels: 1, classes: 1, upsample: 'transpose' as const };

/** A session stand-in around a fixed ONNX: predict() returns its logits, optionally perturbed by `perturb` in probability. */
async function sessionFor(onnx: Uint8Array, perturb: number): Promise<TrainingSession> {
  const ref = await ort.InferenceSession.create(onnx);
  return {
    executionProvider: 'cpu',
    parameterCount: 0,
    step: () => Promise.reject(new Error('not used')),
    loss: () => Promise.reject(new Error('not used')),
    predict: async (images, n) => {
      const out = await ref.run({ image: new ort.Tensor('float32', images, [n, 1, S, S]) });
      return Float32Array.from(out.logits!.data as Float32Array, (x) => {
        const p = 1 / (1 + Math.exp(-x)) + perturb;
        return Math.log(p / (1 - p));
      });
    },
    checkpoint: () => {
      throw new Error('not used');
    },
    restore: () => undefined,
    exportOnnx: () => onnx,
    release: () => ref.release(),
  };
}

const manifestInput = (): ManifestInput => ({
  name: 'gate',
  version: '3',
  description: 'test',
  intendedUse: 'tests only',
  spec: PreprocessSpecSchema.parse({ size: { height: S, width: S }, intensity: { kind: 'minmax' } }),
  threshold: 0.5,
  minArea: 10,
  labels: ['lesion'],
  training: { validationDice: 0.5, bestEpoch: 1 },
});

const images = Float32Array.from({ length: 3 * S * S }, (_, i) => (i * 37) % 101 / 100);

test('parity above tolerance fails and writes nothing', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'trainer-export-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  const onnx = buildUNetOnnx(unet, S, S, 1);
  const session = await sessionFor(onnx, 1e-3);
  await assert.rejects(
    exportModel(session, { out, manifest: manifestInput(), parityImages: images, parityCount: 3, tolerance: 1e-4 }),
    (e: Error) => e instanceof ParityError && /FAILED/.test(e.message) && Math.abs((e as ParityError).maxAbsDiff - 1e-3) < 1e-5,
  );
  await assert.rejects(access(join(out, 'gate')), 'no model directory');
  await session.release();
});

test('parity within tolerance writes model.onnx and a manifest read from the ONNX itself', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'trainer-export-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  const onnx = buildUNetOnnx(unet, S, S, 1);
  const session = await sessionFor(onnx, 0);
  const r = await exportModel(session, { out, manifest: manifestInput(), parityImages: images, parityCount: 3, tolerance: 1e-4 });
  await session.release();
  assert.ok(r.parity.maxAbsDiff < 1e-6);
  assert.equal(r.parity.images, 3);
  const bytes = await readFile(join(out, 'gate', '3', 'model.onnx'));
  const m = parseManifest(JSON.parse(await readFile(join(out, 'gate', '3', 'model.json'), 'utf8')));
  assert.equal(m.onnx.sha256, createHash('sha256').update(bytes).digest('hex'));
  assert.equal(m.onnx.opset, 17);
  assert.equal(m.input.name, 'image');
  assert.deepEqual(m.input.shape, ['N', 1, S, S]);
  assert.equal(m.output.name, 'logits');
  assert.equal(m.postprocessing.minArea, 10);
  assert.deepEqual(m.labels, ['lesion']);
});
