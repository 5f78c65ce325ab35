import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyAugment, sampleAugmentParams, IDENTITY_PARAMS, DEFAULT_AUGMENT, NO_AUGMENT, type AugmentParams } from './augment.ts';
import { Rng } from './rng.ts';

const H = 48;
const W = 40;

function noiseImage(seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: H * W }, () => r.next());
}

/** A bright square on a dark background, and its mask. */
function square(y0: number, x0: number, size: number) {
  const image = new Float32Array(H * W).fill(0.1);
  const mask = new Uint8Array(H * W);
  for (let y = y0; y < y0 + size; y++) for (let x = x0; x < x0 + size; x++) {
    image[y * W + x] = 0.9;
    mask[y * W + x] = 1;
  }
  return { image, mask };
}

const input = (image: Float32Array, mask: Uint8Array) => ({ image, mask, channels: 1, classes: 1, height: H, width: W });

test('identity parameters give the identical image and mask', () => {
  const image = noiseImage(1);
  const mask = Uint8Array.from(image, (v) => (v > 0.5 ? 1 : 0));
  const out = applyAugment(input(image, mask), IDENTITY_PARAMS);
  assert.deepEqual(out.image, image);
  assert.deepEqual(out.mask, mask);
  const sampled = sampleAugmentParams(NO_AUGMENT, new Rng(3), H, W);
  const out2 = applyAugment(input(image, mask), sampled);
  assert.deepEqual(out2.image, image, 'a config with every range at zero is the identity');
});

test('flipping twice is the identity, once mirrors columns', () => {
  const image = noiseImage(2);
  const mask = Uint8Array.from(image, (v) => (v > 0.7 ? 1 : 0));
  const flip: AugmentParams = { ...IDENTITY_PARAMS, flip: true };
  const once = applyAugment(input(image, mask), flip);
  assert.equal(once.image[5 * W + 0], image[5 * W + W - 1]);
  assert.equal(once.mask[7 * W + 3], mask[7 * W + W - 4]);
  const twice = applyAugment(input(once.image, once.mask), flip);
  assert.deepEqual(twice.image, image);
  assert.deepEqual(twice.mask, mask);
});

test('image and mask move together under rotation, shift and scale', () => {
  const { image, mask } = square(14, 12, 12);
  const rng = new Rng(11);
  for (let trial = 0; trial < 20; trial++) {
    const p = sampleAugmentParams({ ...DEFAULT_AUGMENT, brightness: 0, contrast: 0, gamma: 0, shift: 0.1, rotate: 10, scale: 0.15 }, rng, H, W);
    const out = applyAugment(input(image, mask), p, 'zero');
    let inside = 0;
    let agree = 0;
    for (let i = 0; i < H * W; i++) {
      const bright = out.image[i]! > 0.5;
      if (out.mask[i]) inside++;
      if (bright === (out.mask[i] === 1)) agree++;
    }
    assert.ok(inside > 80, `square still present (trial ${trial}, ${inside} px)`);
    // Only boundary pixels may disagree (bilinear image vs nearest mask): the square's perimeter at most.
    assert.ok(H * W - agree <= 4 * 14, `trial ${trial}: ${H * W - agree} pixels disagree`);
  }
});

test('a pure shift moves the square by exactly that many pixels', () => {
  const { image, mask } = square(10, 10, 8);
  const out = applyAugment(input(image, mask), { ...IDENTITY_PARAMS, shiftX: 5, shiftY: -3 }, 'zero');
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const inSq = y >= 7 && y < 15 && x >= 15 && x < 23;
    assert.equal(out.mask[y * W + x], inSq ? 1 : 0);
    assert.ok(Math.abs(out.image[y * W + x]! - (inSq ? 0.9 : x < 5 || y >= H - 3 ? 0 : 0.1)) < 1e-6);
  }
});

test('intensity changes leave the mask alone and stay in 0..1', () => {
  const { image, mask } = square(5, 5, 10);
  const out = applyAugment(input(image, mask), { ...IDENTITY_PARAMS, brightness: 0.3, contrast: 1.5, gamma: 0.7 });
  assert.deepEqual(out.mask, mask);
  assert.ok(out.image.every((v) => v >= 0 && v <= 1));
  assert.notDeepEqual(out.image, image);
});

test('sampled parameters are deterministic per seed and respect their ranges', () => {
  const a = sampleAugmentParams(DEFAULT_AUGMENT, new Rng(5), H, W);
  const b = sampleAugmentParams(DEFAULT_AUGMENT, new Rng(5), H, W);
  assert.deepEqual(a, b);
  const r = new Rng(9);
  let flips = 0;
  for (let i = 0; i < 400; i++) {
    const p = sampleAugmentParams(DEFAULT_AUGMENT, r, H, W);
    assert.ok(Math.abs(p.angleDeg) <= 10);
    assert.ok(Math.abs(p.shiftX) <= 0.0625 * W && Math.abs(p.shiftY) <= 0.0625 * H);
    assert.ok(p.scale >= 0.9 && p.scale <= 1.1);
    if (p.flip) flips++;
  }
  assert.ok(flips > 150 && flips < 250, `${flips} flips of 400 at p=0.5`);
});

test('elastic deformation keeps image and mask aligned', () => {
  const { image, mask } = square(14, 12, 14);
  const p = sampleAugmentParams({ ...NO_AUGMENT, elastic: { p: 1, alpha: 2, grid: 4 } }, new Rng(4), H, W);
  assert.ok(p.displacement);
  const out = applyAugment(input(image, mask), p, 'zero');
  let disagree = 0;
  for (let i = 0; i < H * W; i++) if ((out.image[i]! > 0.5) !== (out.mask[i] === 1)) disagree++;
  assert.ok(disagree <= 4 * 16, `${disagree} pixels disagree`);
  assert.notDeepEqual(out.mask, mask);
});
