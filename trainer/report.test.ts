import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { curvesSvg, writeCurvesPng, writeOverlaysPng, type EpochMetrics } from './report.ts';

const epoch = (e: number, over: Partial<EpochMetrics> = {}): EpochMetrics => ({
  epoch: e,
  lr: 1e-3,
  trainLoss: 2 / e,
  trainLosses: { bce: 0.5 / e, dice: 0.9 / e, focal: 0.1 / e },
  valDice: 1 - 1 / (e + 1),
  valDiceOriginal: 1 - 1.1 / (e + 1),
  trainImagesPerSecond: 5,
  seconds: 60,
  best: true,
  ...over,
});

test('curves SVG draws every series and marks the best epoch', () => {
  const svg = curvesSvg([1, 2, 3, 4].map((e) => epoch(e, { best: e !== 4 })), 'demo <run>');
  assert.equal(svg.match(/<polyline/g)?.length, 6, 'four loss series and two Dice series');
  assert.match(svg, /best \(epoch 3\)/);
  assert.match(svg, /demo &lt;run&gt;/, 'titles are escaped');
});

test('missing original-resolution Dice (NaN) and a single epoch still render', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'trainer-report-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'c.png');
  await writeCurvesPng(path, [epoch(1, { valDiceOriginal: Number.NaN })], 'one epoch');
  const m = await sharp(path).metadata();
  assert.equal(m.format, 'png');
  assert.equal(m.width, 1000);
});

test('overlay grid has one row per example and colours truth and prediction', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'trainer-report-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const H = 32;
  const truth = new Uint8Array(H * H);
  const prob = new Float32Array(H * H);
  for (let y = 8; y < 20; y++) for (let x = 8; x < 20; x++) {
    truth[y * H + x] = 1;
    prob[y * H + x + 2] = 0.9;
  }
  const ex = { id: 'a', image: new Float32Array(H * H).fill(0.5), truth, probability: prob, dice: 0.8 };
  const path = join(dir, 'o.png');
  await writeOverlaysPng(path, [ex, { ...ex, id: 'b' }], H, H);
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  let red = 0;
  let green = 0;
  for (let i = 0; i < data.length; i += info.channels) {
    if (data[i]! - data[i + 1]! > 60) red++;
    if (data[i + 1]! - data[i]! > 60) green++;
  }
  assert.ok(red > 100, `prediction drawn in red (${red} px)`);
  assert.ok(green > 100, `truth drawn in green (${green} px)`);
  assert.ok(info.height > 2 * 160, 'two rows');
});
