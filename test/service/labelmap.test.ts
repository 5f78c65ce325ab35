/**
 * A softmax (multi-class) model over HTTP: one mask per non-background class, exclusive, and mask.png
 * as a label map (each pixel its label's 1-based index) equal to the JSON masks.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { dice } from '../../core/metrics/index.ts';
import { decodeMask, encodeMask } from '../../core/rle/index.ts';
import { modelRepository, postDicom, postMultipart, startInProcess, testDicom, type InProcess } from './helpers.ts';
import { softmaxFixture } from '../helpers/model-fixture.ts';

let svc: InProcess;
let repo: { dir: string; remove: () => Promise<void> };
before(async () => {
  repo = await modelRepository([
    softmaxFixture('classes'),
  ]);
  svc = await startInProcess({ MODEL_REPOSITORY: repo.dir });
});
after(async () => {
  await svc.close();
  await repo.remove();
});

test('softmax model: exclusive class masks, and mask.png?as=labelmap holds each pixel\'s class', async () => {
  const res = await postDicom(svc.url, testDicom({ rows: 80, columns: 72 }), '?rleFormat=coco');
  assert.equal(res.status, 200);
  const body = (await res.json()) as { id: string; masks: Array<{ label: string; threshold: number | null; rle: { counts: number[]; size: [number, number] } }> };
  assert.deepEqual(body.masks.map((m) => m.label), ['lung', 'heart']);
  assert.equal(body.masks[0]!.threshold, null);
  const masks = body.masks.map((m) => decodeMask(m.rle.counts, 'coco', 80, 72));
  const png = await (await fetch(`${svc.url}/segmentations/${body.id}/mask.png?as=labelmap`)).arrayBuffer();
  const { data, info } = await sharp(Buffer.from(png)).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, info.channels], [72, 80, 1]);
  let counted = [0, 0, 0];
  for (let i = 0; i < 80 * 72; i++) {
    assert.ok(masks[0]!.data[i]! + masks[1]!.data[i]! <= 1, 'classes are exclusive');
    const expected = masks[0]!.data[i] ? 1 : masks[1]!.data[i] ? 2 : 0;
    assert.equal(data[i], expected, `pixel ${i}`);
    counted[expected]!++;
  }
  assert.ok(counted.filter((c) => c > 0).length >= 2, `more than one value in the map: ${counted}`);
  const binary = await sharp(Buffer.from(await (await fetch(`${svc.url}/segmentations/${body.id}/mask.png`)).arrayBuffer())).extractChannel(0).raw().toBuffer();
  for (let i = 0; i < 80 * 72; i++) assert.equal(binary[i], masks[0]!.data[i] || masks[1]!.data[i] ? 255 : 0);
});

test('softmax model: per-class Dice against per-class ground truths equals a Dice recomputed from the returned RLE', async () => {
  const dicom = testDicom({ rows: 80, columns: 72 });
  const first = (await (await postDicom(svc.url, dicom, '?rleFormat=coco')).json()) as { masks: Array<{ label: string; rle: { counts: number[] } }> };
  const [lung] = first.masks.map((m) => decodeMask(m.rle.counts, 'coco', 80, 72));
  // Truths: lung's own mask for lung (Dice 1 unless empty), and lung's mask for heart too (exclusive: Dice 0 or 1 if both empty).
  const truth = encodeMask(lung!, 'kaggle');
  const res = await postMultipart(svc.url, dicom, { 'groundTruth.lung': truth, 'groundTruth.heart': truth, groundTruthFormat: 'kaggle' }, '?rleFormat=coco');
  assert.equal(res.status, 200);
  const body = (await res.json()) as { dice: Record<string, number>; masks: Array<{ label: string; rle: { counts: number[] } }> };
  const pred = Object.fromEntries(body.masks.map((m) => [m.label, decodeMask(m.rle.counts, 'coco', 80, 72)]));
  assert.equal(body.dice.lung, dice(pred.lung!, lung!));
  assert.equal(body.dice.heart, dice(pred.heart!, lung!));
  assert.ok(body.dice.lung === 1 && body.dice.heart! < 1, JSON.stringify(body.dice));
});
