import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { decodeModel } from '../graph/onnx/encode.ts';
import { buildInferenceOnnx, buildUNetOnnx } from './inference-graph.ts';
import { Rng } from '../../core/rng.ts';
import { gaussian } from './gaussian.ts';
import { countTrainable, initUNetParams, UNetConfigError, type UNetConfig } from './unet.ts';

const small: UNetConfig = { depth: 2, baseChannels: 4, inChannels: 1, classes: 2, upsample: 'transpose' };

function randomImages(n: number, c: number, h: number, w: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * c * h * w }, () => rng.next());
}

async function runLogits(model: Uint8Array, x: Float32Array, dims: number[]): Promise<ort.Tensor> {
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  try {
    const out = await s.run({ image: new ort.Tensor('float32', x, dims) });
    return out['logits']!;
  } finally {
    await s.release();
  }
}

test('the standard UNet (base 16, depth 4) has the expected ~1.94M trainable parameters', () => {
  assert.equal(countTrainable({ depth: 4, baseChannels: 16, inChannels: 1, classes: 1, upsample: 'transpose' }), 1942289);
});

test('buildUNetOnnx writes input image [N,C,H,W] and output logits with a symbolic batch, opset 17', () => {
  const m = decodeModel(buildUNetOnnx(small, 32, 48, 7));
  assert.equal(m.opset, 17);
  assert.deepEqual(m.inputs, [{ name: 'image', dtype: 'float32', shape: ['N', 1, 32, 48] }]);
  assert.deepEqual(m.outputs, [{ name: 'logits', dtype: 'float32', shape: ['N', 2, 32, 48] }]);
  assert.ok(m.initializers.has('enc0.0.conv.weight'));
  assert.deepEqual(m.initializers.get('enc0.0.conv.weight')!.dims, [4, 1, 3, 3]);
});

test('onnxruntime runs the exported UNet for every upsampling mode and batch sizes 1 and 3', async () => {
  for (const upsample of ['transpose', 'nearest', 'bilinear'] as const) {
    const cfg = { ...small, upsample };
    const model = buildUNetOnnx(cfg, 32, 32, 1);
    const x3 = randomImages(3, 1, 32, 32, 5);
    const out3 = await runLogits(model, x3, [3, 1, 32, 32]);
    assert.deepEqual(out3.dims, [3, 2, 32, 32]);
    const out1 = await runLogits(model, x3.subarray(0, 32 * 32), [1, 1, 32, 32]);
    assert.deepEqual(out1.dims, [1, 2, 32, 32]);
    const a = out3.data as Float32Array;
    const b = out1.data as Float32Array;
    // Inference BN is per-sample, so image 0 of the batch equals the single-image run.
    for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5, `${upsample}: batch item 0 differs at ${i}`);
    assert.ok(a.every(Number.isFinite));
  }
});

test('same seed gives the same weights, another seed different ones', () => {
  const a = initUNetParams(small, 3).get('enc1.0.conv.weight')!;
  const b = initUNetParams(small, 3).get('enc1.0.conv.weight')!;
  const c = initUNetParams(small, 4).get('enc1.0.conv.weight')!;
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  // He init: std close to sqrt(2 / fan_in) with fan_in = 4 * 9.
  const std = Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
  assert.ok(Math.abs(std - Math.sqrt(2 / 36)) < 0.06, `std ${std}`);
});

test('folding BatchNorm into the convs keeps the logits (non-trivial BN statistics)', async () => {
  const tensors = initUNetParams(small, 11);
  const rng = new Rng(99);
  const normal = gaussian(rng);
  for (const [name, t] of tensors) {
    if (name.endsWith('.bn.mean') || name.endsWith('.bn.bias')) for (let i = 0; i < t.length; i++) t[i] = normal() * 0.3;
    if (name.endsWith('.bn.var') || name.endsWith('.bn.scale')) for (let i = 0; i < t.length; i++) t[i] = 0.5 + rng.next();
  }
  const x = randomImages(2, 1, 32, 32, 8);
  const kept = (await runLogits(buildInferenceOnnx(small, 32, 32, tensors), x, [2, 1, 32, 32])).data as Float32Array;
  const folded = (await runLogits(buildInferenceOnnx(small, 32, 32, tensors, { foldBatchNorm: true }), x, [2, 1, 32, 32])).data as Float32Array;
  let maxDiff = 0;
  for (let i = 0; i < kept.length; i++) maxDiff = Math.max(maxDiff, Math.abs(kept[i]! - folded[i]!));
  assert.ok(maxDiff < 1e-4, `max |kept - folded| = ${maxDiff}`);
  assert.ok(decodeModel(buildInferenceOnnx(small, 32, 32, tensors, { foldBatchNorm: true })).nodes.every((n) => n.op !== 'BatchNormalization'));
});

test('an input size that is not a multiple of 2^depth is refused with a clear error', () => {
  assert.throws(() => buildUNetOnnx(small, 30, 32, 1), (e: unknown) => e instanceof UNetConfigError && /height 30 must be a positive multiple of 2\^depth = 4/.test(e.message));
  assert.throws(() => buildUNetOnnx({ ...small, upsample: 'cubic' as never }, 32, 32, 1), UNetConfigError);
  assert.throws(() => buildUNetOnnx({ ...small, depth: 0 }, 32, 32, 1), /unet.depth/);
});
