import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { generatePairsDataset, PAIRS_16BIT_MAX, pairsCaseId } from './pairs.ts';

test('pairs layout: LGG-style names, 8-bit grey images, 0/255 masks, tumour in some slices only', async (t) => {
  const out = await mkdtemp(path.join(tmpdir(), 'synth-pairs-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  const res = await generatePairsDataset({ outDir: out, cases: 2, slicesPerCase: 6, size: 64, seed: 2 });
  assert.equal(res.pairs.length, 12);
  const caseId = pairsCaseId(0);
  const names = (await readdir(path.join(out, caseId))).sort();
  assert.deepEqual(names, Array.from({ length: 6 }, (_, i) => [`${caseId}_${i + 1}.png`, `${caseId}_${i + 1}_mask.png`]).flat().sort());
  let withTumour = 0;
  for (const p of res.pairs) {
    const meta = await sharp(path.join(out, p.image)).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height, meta.channels, meta.depth], ['png', 64, 64, 1, 'uchar']);
    const maskMeta = await sharp(path.join(out, p.mask)).metadata();
    assert.deepEqual([maskMeta.format, maskMeta.width, maskMeta.height, maskMeta.channels, maskMeta.depth], ['png', 64, 64, 1, 'uchar']);
    const mask = await sharp(path.join(out, p.mask)).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    assert.equal(mask.info.channels, 1);
    let fg = 0;
    for (const v of mask.data) {
      assert.ok(v === 0 || v === 255, `mask value ${v}`);
      if (v === 255) fg++;
    }
    assert.equal(fg, p.tumourPixels);
    if (fg > 0) withTumour++;
  }
  assert.ok(withTumour > 0 && withTumour < res.pairs.length, `${withTumour}/${res.pairs.length} slices with tumour`);
});

test('pairs layout: deterministic for a seed; 16-bit images hold 12-bit values', async (t) => {
  const a = await mkdtemp(path.join(tmpdir(), 'synth-pa-'));
  const b = await mkdtemp(path.join(tmpdir(), 'synth-pb-'));
  t.after(() => Promise.all([rm(a, { recursive: true, force: true }), rm(b, { recursive: true, force: true })]));
  const ra = await generatePairsDataset({ outDir: a, cases: 1, slicesPerCase: 3, size: 48, seed: 9, bitDepth: 16 });
  await generatePairsDataset({ outDir: b, cases: 1, slicesPerCase: 3, size: 48, seed: 9, bitDepth: 16 });
  for (const p of ra.pairs) {
    assert.deepEqual(await readFile(path.join(a, p.image)), await readFile(path.join(b, p.image)));
    assert.deepEqual(await readFile(path.join(a, p.mask)), await readFile(path.join(b, p.mask)));
  }
  const mid = ra.pairs[1];
  assert.equal((await sharp(path.join(a, mid.image)).metadata()).depth, 'ushort');
  const { data } = await sharp(path.join(a, mid.image)).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  const v = new Uint16Array(data.buffer, data.byteOffset, data.length / 2);
  let max = 0;
  for (const x of v) max = Math.max(max, x);
  assert.ok(max > 255 && max <= PAIRS_16BIT_MAX, `max sample ${max}`);
});
