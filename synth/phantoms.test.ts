import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskArea } from '../core/mask.ts';
import { brainPhantom, renderBrainSlice, sampleBrainVolume } from './brain.ts';
import { chestPhantom } from './chest.ts';
import { connectedComponents } from './field.ts';
import { deriveSeed, mulberry32 } from './rng.ts';

const S = 128;

function unionOf(size: number, masks: { data: Uint8Array }[]): Uint8Array {
  const u = new Uint8Array(size * size);
  for (const m of masks) for (let i = 0; i < u.length; i++) u[i] |= m.data[i];
  return u;
}

test('chest phantom is deterministic for a seed and differs across seeds', () => {
  const a = chestPhantom(mulberry32(42), S, { lesions: 1 });
  const b = chestPhantom(mulberry32(42), S, { lesions: 1 });
  const c = chestPhantom(mulberry32(43), S, { lesions: 1 });
  assert.deepEqual(a.pixels, b.pixels);
  assert.deepEqual(a.mask.data, b.mask.data);
  assert.notDeepEqual(a.pixels, c.pixels);
});

test('chest negatives have empty masks and no components', () => {
  for (let k = 0; k < 3; k++) {
    const p = chestPhantom(mulberry32(deriveSeed(1, k)), S, { lesions: 0 });
    assert.equal(maskArea(p.mask), 0);
    assert.equal(p.components.length, 0);
    assert.equal(p.lesions.length, 0);
  }
});

test('chest lesions: components are separate, their union is the mask, sizes within bounds', () => {
  let sawTwo = false;
  for (let k = 0; k < 8; k++) {
    const p = chestPhantom(mulberry32(deriveSeed(2, k)), S, { lesions: k % 2 === 0 ? 1 : 2 });
    assert.ok(p.components.length >= 1 && p.components.length <= 2, `image ${k}: ${p.components.length} components`);
    if (p.components.length === 2) sawTwo = true;
    assert.deepEqual(unionOf(S, p.components), p.mask.data);
    // Each component is itself one 8-connected piece and components do not overlap.
    for (const c of p.components) assert.equal(connectedComponents(c.data, S, S).length, 1);
    const total = p.components.reduce((n, c) => n + maskArea(c), 0);
    assert.equal(total, maskArea(p.mask));
    for (const l of p.lesions) {
      const frac = l.area / (S * S);
      // Lesions are never microscopic: at least ~0.3 % of the image each.
      assert.ok(frac >= 0.003, `image ${k}: lesion of ${(frac * 100).toFixed(2)} % is too small`);
      assert.ok(frac <= 0.06, `image ${k}: lesion of ${(frac * 100).toFixed(2)} % is too large`);
    }
  }
  assert.ok(sawTwo, 'no image with two separate lesion components');
});

test('the default negative fraction gives a mix of negatives and positives', () => {
  let neg = 0;
  const n = 40;
  for (let k = 0; k < n; k++) if (chestPhantom(mulberry32(deriveSeed(3, k)), 64).components.length === 0) neg++;
  assert.ok(neg >= 0.2 * n && neg <= 0.6 * n, `${neg}/${n} negatives`);
});

function diceBelow(pixels: Uint8Array, truth: Uint8Array, t: number): number {
  let inter = 0;
  let pred = 0;
  let gt = 0;
  for (let i = 0; i < pixels.length; i++) {
    const p = pixels[i] < t;
    if (p) pred++;
    if (truth[i]) gt++;
    if (p && truth[i]) inter++;
  }
  return pred + gt === 0 ? 1 : (2 * inter) / (pred + gt);
}

test('chest lesions are not separable by a global intensity threshold', () => {
  // Lesions are darker than the lung around them, so "darker than t" is the best polarity;
  // the brighter-than polarity is checked too so the claim does not rest on that guess.
  const size = 192;
  const imgs = Array.from({ length: 16 }, (_, k) => chestPhantom(mulberry32(deriveSeed(9, k)), size, { lesions: 1 }));
  let bestGlobal = 0;
  for (let t = 1; t <= 256; t++) {
    let below = 0;
    let above = 0;
    for (const p of imgs) {
      below += diceBelow(p.pixels, p.mask.data, t);
      const inv = p.pixels.map((v) => 255 - v);
      above += diceBelow(inv, p.mask.data, 256 - t);
    }
    bestGlobal = Math.max(bestGlobal, below / imgs.length, above / imgs.length);
  }
  assert.ok(bestGlobal < 0.25, `best global threshold reaches mean Dice ${bestGlobal.toFixed(3)}`);
  // Even an oracle threshold chosen per image stays far from usable.
  let oracle = 0;
  for (const p of imgs) {
    let best = 0;
    for (let t = 1; t <= 256; t += 2) best = Math.max(best, diceBelow(p.pixels, p.mask.data, t));
    oracle += best;
  }
  assert.ok(oracle / imgs.length < 0.35, `per-image oracle threshold reaches mean Dice ${(oracle / imgs.length).toFixed(3)}`);
});

test('brain phantom: deterministic, tumour mask present at the tumour centre and absent far from it', () => {
  const a = brainPhantom(mulberry32(5), S);
  const b = brainPhantom(mulberry32(5), S);
  assert.deepEqual(a.pixels, b.pixels);
  assert.ok(maskArea(a.mask) > 0.003 * S * S);
  assert.deepEqual(unionOf(S, a.components), a.mask.data);
  const vol = sampleBrainVolume(mulberry32(6));
  assert.ok(vol.tumour);
  const far = vol.tumour.cz + vol.tumour.rz + 0.05 <= 1 ? vol.tumour.cz + vol.tumour.rz + 0.05 : vol.tumour.cz - vol.tumour.rz - 0.05;
  assert.equal(maskArea(renderBrainSlice(vol, far, S).mask), 0);
  const none = brainPhantom(mulberry32(7), S, { tumourProbability: 0 });
  assert.equal(maskArea(none.mask), 0);
});

test('brain tumour is brighter than the brain around it (bright look) on average', () => {
  // Sanity of the rendering: the mask marks what is drawn, not an arbitrary region.
  let checked = 0;
  for (let k = 0; k < 12 && checked < 3; k++) {
    const vol = sampleBrainVolume(mulberry32(deriveSeed(8, k)));
    if (vol.tumour?.look !== 'bright') continue;
    const p = renderBrainSlice(vol, vol.tumour.cz, S);
    let inside = 0;
    let nIn = 0;
    let ring = 0;
    let nRing = 0;
    const dil = new Uint8Array(S * S);
    const r = 4;
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) {
      if (!p.mask.data[y * S + x]) continue;
      for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) {
        const yy = y + dy;
        const xx = x + dx;
        if (yy >= 0 && xx >= 0 && yy < S && xx < S) dil[yy * S + xx] = 1;
      }
    }
    for (let i = 0; i < S * S; i++) {
      if (p.mask.data[i]) { inside += p.pixels[i]; nIn++; }
      else if (dil[i]) { ring += p.pixels[i]; nRing++; }
    }
    assert.ok(inside / nIn > ring / nRing + 10, `tumour mean ${inside / nIn} vs surround ${ring / nRing}`);
    checked++;
  }
  assert.ok(checked > 0);
});
