/**
 * The segment CLI on the shipped multi-class model: --all-labels writes ImageId,ClassId,EncodedPixels
 * (ClassId numbered as the trainer's multi-class layouts number classes), one row per class and image;
 * the masks score against the phantoms' own label maps; --label picks a class by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMask } from '../core/mask.ts';
import { dice } from '../core/metrics/index.ts';
import { decodeMask } from '../core/rle/index.ts';
import { generateMulticlassDataset } from '../synth/index.ts';
import { runSegment } from './segment-cli.ts';

test('--all-labels: every class of every image, scored against the phantom label maps', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'segment-mc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ds = await generateMulticlassDataset({ outDir: join(dir, 'data'), layout: 'labelmap', count: 4, size: 128, seed: 77 });
  const out = join(dir, 'sub.csv');
  const base = { models: 'models', model: 'synthetic-thorax-multiclass', rle: 'kaggle', tta: false, provider: 'cpu', deviceId: 0, workers: 1, maxBatch: 4, truthRle: 'kaggle', progress: false } as const;
  await runSegment([join(dir, 'data', 'images')], { ...base, out, allLabels: true } as never, () => undefined);
  const lines = (await readFile(out, 'utf8')).trim().split('\n');
  assert.equal(lines[0], 'ImageId,ClassId,EncodedPixels');
  assert.equal(lines.length - 1, 4 * 3, 'one row per image and non-background class');
  const byImage = new Map<string, Map<number, string>>();
  for (const l of lines.slice(1)) {
    const [id, cls, rle] = l.split(',');
    if (!byImage.has(id!)) byImage.set(id!, new Map());
    byImage.get(id!)!.set(Number(cls), rle!);
  }
  const scores: number[][] = [[], [], [], []];
  for (const rec of ds.images) {
    const rows = byImage.get(rec.imageId)!;
    assert.deepEqual([...rows.keys()].sort(), [1, 2, 3], `${rec.imageId}: ClassIds 1..3 (lung, heart, pneumothorax)`);
    const truthMap = (await import('sharp')).default(join(dir, 'data', rec.mask!));
    const labels = await truthMap.extractChannel(0).raw().toBuffer();
    for (const c of [1, 2]) {
      const truth = createMask(128, 128, Uint8Array.from(labels, (v) => (v === c ? 1 : 0)));
      const rle = rows.get(c)!;
      const pred = rle === '-1' ? createMask(128, 128) : decodeMask(rle, 'kaggle', 128, 128);
      scores[c]!.push(dice(pred, truth));
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(scores[1]!) > 0.9, `lung Dice ${mean(scores[1]!)}`);
  assert.ok(mean(scores[2]!) > 0.8, `heart Dice ${mean(scores[2]!)}`);

  // --label heart: the heart rows alone, in the single-label format.
  const one = join(dir, 'heart.csv');
  await runSegment([join(dir, 'data', 'images')], { ...base, out: one, label: 'heart' } as never, () => undefined);
  const heart = (await readFile(one, 'utf8')).trim().split('\n');
  assert.equal(heart[0], 'ImageId,EncodedPixels');
  for (const l of heart.slice(1)) {
    const [id, rle] = l.split(',');
    assert.equal(rle, byImage.get(id!)!.get(2), `${id}: --label heart is the ClassId 2 row`);
  }
});
