import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import * as ort from 'onnxruntime-node';
import { pino } from 'pino';
import { Rng } from '../../core/rng.ts';
import {
  CheckpointMismatchError,
  createTrainingSession,
  deserializeCheckpoint,
  serializeCheckpoint,
  TrainingInputError,
  UNetConfigError,
  type TrainingSessionOptions,
} from './training-session.ts';

const H = 32;
const W = 32;
const quiet = pino({ level: 'silent' });
const base: TrainingSessionOptions = {
  unet: { depth: 2, baseChannels: 4, inChannels: 1, classes: 1, upsample: 'transpose' },
  height: H,
  width: W,
  loss: { bce: 3, dice: 1, focal: 4 },
  device: 'cpu',
  seed: 1,
  intraOpThreads: 1,
  logger: quiet,
};

/** Noise images with one bright square each; the mask is the square (learnable in a few dozen steps). */
function squares(batch: number, seed: number): { images: Float32Array; masks: Float32Array } {
  const rng = new Rng(seed);
  const images = new Float32Array(batch * H * W);
  const masks = new Float32Array(batch * H * W);
  for (let b = 0; b < batch; b++) {
    const size = 6 + Math.floor(rng.next() * 8);
    const r0 = Math.floor(rng.next() * (H - size));
    const c0 = Math.floor(rng.next() * (W - size));
    for (let r = 0; r < H; r++) {
      for (let c = 0; c < W; c++) {
        const inside = r >= r0 && r < r0 + size && c >= c0 && c < c0 + size;
        images[b * H * W + r * W + c] = (inside ? 0.8 : 0.2) + (rng.next() - 0.5) * 0.2;
        masks[b * H * W + r * W + c] = inside ? 1 : 0;
      }
    }
  }
  return { images, masks };
}

test('training on a trivially learnable task lowers the loss clearly (32x32, depth 2, base 4)', async () => {
  const s = await createTrainingSession(base);
  try {
    assert.equal(s.executionProvider, 'cpu');
    assert.ok(s.parameterCount > 1000);
    const losses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const { images, masks } = squares(4, 100 + i);
      const r = await s.step(images, masks, 4, 1e-2);
      assert.ok([r.loss, r.bce, r.dice, r.focal].every(Number.isFinite));
      assert.ok(Math.abs(r.loss - Math.max(3 * r.bce + r.dice + 4 * r.focal, 1e-5)) < 1e-4 * Math.max(1, r.loss), 'total = weighted sum of components');
      losses.push(r.loss);
    }
    const first = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
    assert.ok(last < 0.5 * first, `loss went from ${first.toFixed(3)} to ${last.toFixed(3)}`);
    // The trained net segments a held-out image better than chance.
    const { images, masks } = squares(2, 9999);
    const p = await s.predict(images, 2);
    let inter = 0;
    let sum = 0;
    for (let i = 0; i < p.length; i++) {
      const y = p[i]! > 0 ? 1 : 0; // logit > 0 <=> probability > 0.5
      inter += y * masks[i]!;
      sum += y + masks[i]!;
    }
    assert.ok((2 * inter) / sum > 0.5, `held-out dice ${(2 * inter) / sum}`);
  } finally {
    await s.release();
  }
});

test('checkpoint -> serialize -> restore into another session gives an identical next step', async () => {
  const a = await createTrainingSession(base);
  const b = await createTrainingSession({ ...base, seed: 2 });
  try {
    for (let i = 0; i < 3; i++) {
      const { images, masks } = squares(2, i);
      await a.step(images, masks, 2, 1e-3);
    }
    const ckpt = deserializeCheckpoint(serializeCheckpoint(a.checkpoint()));
    assert.equal(ckpt.step, 3);
    b.restore(ckpt);
    const { images, masks } = squares(2, 50);
    const ra = await a.step(images, masks, 2, 1e-3);
    const rb = await b.step(images, masks, 2, 1e-3);
    assert.deepEqual(rb, ra);
    const ca = a.checkpoint();
    const cb = b.checkpoint();
    assert.equal(cb.step, 4);
    for (const [name, t] of Object.entries(ca.tensors)) assert.deepEqual(cb.tensors[name]!.data, t.data, `tensor ${name}`);
    assert.ok(Object.keys(ca.tensors).some((n) => n.startsWith('adam.m.')), 'Adam moments are checkpointed');
    assert.ok(Object.keys(ca.tensors).some((n) => n.endsWith('.bn.var')), 'BN running stats are checkpointed');
  } finally {
    await a.release();
    await b.release();
  }
});

test('restore refuses a checkpoint of another architecture or size with a clear error', async () => {
  const a = await createTrainingSession(base);
  const b = await createTrainingSession({ ...base, unet: { ...base.unet, baseChannels: 8 } });
  try {
    assert.throws(() => b.restore(a.checkpoint()), (e: unknown) => e instanceof CheckpointMismatchError && /unet.baseChannels: checkpoint 4, session 8/.test(e.message));
    const c = a.checkpoint();
    delete c.tensors['head.bias'];
    assert.throws(() => a.restore(c), /lacks tensor head.bias/);
    assert.throws(() => deserializeCheckpoint(new Uint8Array(20)), /bad magic/);
  } finally {
    await a.release();
    await b.release();
  }
});

test('predict matches the exported ONNX (BN kept and folded) in a fresh InferenceSession, for dynamic batch sizes', async () => {
  for (const upsample of ['transpose', 'nearest', 'bilinear'] as const) {
    const s = await createTrainingSession({ ...base, unet: { ...base.unet, upsample } });
    try {
      for (let i = 0; i < 4; i++) {
        const batch = 2 + (i % 2); // dynamic batch in training too: 2, 3, 2, 3
        const { images, masks } = squares(batch, 200 + i);
        await s.step(images, masks, batch, 3e-3);
      }
      for (const fold of [false, true]) {
        const model = s.exportOnnx({ foldBatchNorm: fold });
        const fresh = await ort.InferenceSession.create(model);
        for (const batch of [1, 3]) {
          const { images } = squares(batch, 300 + batch);
          const p = await s.predict(images, batch);
          assert.equal(p.length, batch * H * W);
          const out = await fresh.run({ image: new ort.Tensor('float32', images, [batch, 1, H, W]) });
          const logits = out['logits']!;
          assert.deepEqual(logits.dims, [batch, 1, H, W]);
          let maxDiff = 0;
          const l = logits.data as Float32Array;
          for (let k = 0; k < p.length; k++) maxDiff = Math.max(maxDiff, Math.abs(p[k]! - l[k]!));
          assert.ok(maxDiff < 1e-4, `${upsample} fold=${fold} batch ${batch}: max |predict - export| = ${maxDiff}`);
        }
        await fresh.release();
      }
    } finally {
      await s.release();
    }
  }
});

test('device cuda: on a machine without CUDA falls back to CPU with one warning; with CUDA runs on it without one', async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const logger = pino({ level: 'warn' }, sink);
  const s = await createTrainingSession({ ...base, device: 'cuda', logger });
  try {
    const warnings = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40);
    // Branch on what the host has (as core/engine/engine.test.ts does): a CUDA host is not a failure.
    if (s.executionProvider === 'cpu') {
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!.msg, /CUDA execution provider unavailable/);
    } else {
      assert.equal(s.executionProvider, 'cuda');
      assert.deepEqual(warnings, []);
    }
    const { images, masks } = squares(2, 1);
    assert.ok(Number.isFinite((await s.step(images, masks, 2, 1e-3)).loss));
  } finally {
    await s.release();
  }
});

test('bad configuration and bad inputs are refused with clear errors', async () => {
  await assert.rejects(createTrainingSession({ ...base, height: 30 }), (e: unknown) => e instanceof UNetConfigError && /multiple of 2\^depth = 4/.test(e.message));
  await assert.rejects(createTrainingSession({ ...base, loss: { bce: 0, dice: 0, focal: 0 } }), /at least one loss weight/);
  const s = await createTrainingSession(base);
  try {
    const { images, masks } = squares(2, 1);
    await assert.rejects(s.step(images, masks, 3, 1e-3), TrainingInputError);
    await assert.rejects(s.step(images, masks.subarray(1), 2, 1e-3), /masks must be a Float32Array of 2x1x32x32/);
    await assert.rejects(s.step(images, masks, 2, Number.NaN), /lr must be/);
    await assert.rejects(s.predict(images.subarray(0, 10), 1), /images must be/);
    await assert.rejects(s.loss(masks.subarray(1), masks, 2), /logits must be a Float32Array of 2x1x32x32/);
    await assert.rejects(s.loss(masks, masks.subarray(1), 2), /masks must be a Float32Array of 2x1x32x32/);
  } finally {
    await s.release();
  }
  await assert.rejects(s.predict(new Float32Array(H * W), 1), /released/);
});
