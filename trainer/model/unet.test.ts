import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Value } from '../graph/builder.ts';
import { gradCheck, type GradCheckInput } from '../graph/grads/gradcheck.ts';
import { buildComboLoss } from './loss.ts';
import { Rng } from '../../core/rng.ts';
import { gaussian } from './gaussian.ts';
import { buildUNetForward, initUNetParams, unetParamSpecs, type UNetConfig } from './unet.ts';

/**
 * Whole-network check: the gradient of ComboLoss through a small UNet in training form (batch-stat
 * BatchNorm, max-pool, upsampling, skip concatenation) against finite differences, for a sample of
 * parameter tensors from every stage.
 */
async function checkUNet(cfg: UNetConfig, wrt: string[]) {
  const [n, h, w] = [2, 8, 8];
  const specs = unetParamSpecs(cfg);
  const init = initUNetParams(cfg, 5);
  const rng = new Rng(6);
  const normal = gaussian(rng);
  // Non-trivial BN affine parameters, so scale/bias gradients are not at a symmetric point.
  for (const [name, t] of init) {
    if (name.endsWith('.bn.scale')) t.forEach((_, i) => (t[i] = 0.8 + 0.4 * rng.next()));
    if (name.endsWith('.bn.bias') || name.endsWith('.up.bias') || name === 'head.bias') t.forEach((_, i) => (t[i] = 0.2 * normal()));
  }
  const inputs: GradCheckInput[] = [
    { name: 'image', dims: [n, cfg.inChannels, h, w], data: Array.from({ length: n * cfg.inChannels * h * w }, () => rng.next()), wrt: false },
    { name: 'mask', dims: [n, cfg.classes, h, w], data: Array.from({ length: n * cfg.classes * h * w }, () => (rng.next() < 0.3 ? 1 : 0)), wrt: false },
    ...specs.map((s) => ({ name: s.name, dims: [...s.dims], data: init.get(s.name)!, wrt: wrt.includes(s.name) })),
  ];
  return gradCheck({
    inputs,
    build: (g, values) => {
      const byName = new Map<string, Value>(values.map((v) => [v.name, v]));
      const { logits } = buildUNetForward(g, cfg, byName.get('image')!, (nm) => byName.get(nm)!, 'train');
      // Unit loss weights keep the loss near 1, so float32 rounding stays far below the tolerance.
      return buildComboLoss(g, logits, byName.get('mask')!, { bce: 1, dice: 1, focal: 1 }).total;
    },
    scalarOutput: true,
    dtype: 'float32',
    // A tiny net has many pre-activations near ReLU's kink; a small step keeps central differences
    // from straddling it (at 5e-3 a few elements do, and the difference quotient is then wrong).
    eps: 1e-4,
    rtol: 5e-2,
    atol: 2e-3,
  });
}

test('UNet (transpose upsampling) training-form gradients match finite differences', async () => {
  const cfg: UNetConfig = { depth: 2, baseChannels: 2, inChannels: 1, classes: 1, upsample: 'transpose' };
  const r = await checkUNet(cfg, ['enc0.0.conv.weight', 'enc1.1.bn.scale', 'enc2.0.bn.bias', 'dec1.up.weight', 'dec0.0.conv.weight', 'head.bias']);
  assert.ok(r.checked > 50);
  assert.deepEqual(r.failures, [], JSON.stringify(r.worst));
});

test('UNet (bilinear upsampling, two classes) training-form gradients match finite differences', async () => {
  const cfg: UNetConfig = { depth: 1, baseChannels: 2, inChannels: 2, classes: 2, upsample: 'bilinear' };
  const r = await checkUNet(cfg, ['enc0.1.conv.weight', 'dec0.up.weight', 'dec0.up.bias', 'head.weight']);
  assert.ok(r.checked > 20);
  assert.deepEqual(r.failures, [], JSON.stringify(r.worst));
});
