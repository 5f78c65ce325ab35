import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { curvesSvg, scalarsCsv, writeCurvesPng, writeEpochReport, writeOverlaysPng, type EpochMetrics } from './report.ts';
import { readFile } from 'node:fs/promises';

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
  assert.equal(svg.match(/<polyline/g)?.length, 7, 'four loss series, two Dice series and the learning rate');
  assert.match(svg, />learning rate</);
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

test('overlay grid has one row per example and colours truth and prediction in colour-blind-safe colours', async (t) => {
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
  // Orange (prediction): red well above blue; blue (truth): blue well above red. No pure red or green.
  let orange = 0;
  let blue = 0;
  let redGreen = 0;
  for (let i = 0; i < data.length; i += info.channels) {
    const [r, g, b] = [data[i]!, data[i + 1]!, data[i + 2]!];
    if (r - b > 60 && g > b) orange++;
    if (b - r > 60) blue++;
    if ((r - g > 100 && r - b > 100) || (g - r > 100 && g - b > 100)) redGreen++;
  }
  assert.ok(orange > 100, `prediction drawn in orange (${orange} px)`);
  assert.ok(blue > 100, `truth drawn in blue (${blue} px)`);
  assert.ok(redGreen < 20, `no red/green pixels (${redGreen})`);
  // The legend: swatches at the top in the two colours.
  const at = (x: number, y: number): number[] => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
  assert.deepEqual(at(4 + 7, 35), [0x00, 0x72, 0xb2], 'truth swatch');
  assert.ok(info.height > 2 * 160, 'two rows');
});

test('curves draw the all-empty baseline as a dashed line in the Dice panel', () => {
  const svg = curvesSvg([1, 2, 3].map((e) => epoch(e, { valDice: 0.5, valBaseline: 0.5 })), 'half empty');
  assert.match(svg, /all-empty baseline/);
  const line = svg.match(/<polyline points="([^"]+)" fill="none" stroke="#555555" stroke-width="2" stroke-dasharray/);
  assert.ok(line, 'a dashed grey polyline');
  const ys = new Set(line[1]!.split(' ').map((p) => p.split(',')[1]));
  assert.equal(ys.size, 1, 'horizontal');
});

test('scalars CSV: a header and one row per epoch with lr, loss terms, Dice and baseline', () => {
  const csv = scalarsCsv([epoch(1, { valBaseline: 0.25, valDiceOriginal: Number.NaN }), epoch(2, { lr: 1e-4, valBaseline: 0.25, best: false })]).trim().split('\n');
  assert.equal(csv[0], 'epoch,lr,train_loss,train_bce,train_dice,train_focal,val_loss,val_dice,val_dice_original,val_baseline_all_empty,train_images_per_second,seconds,best');
  assert.equal(csv.length, 3);
  const r1 = csv[1]!.split(',');
  assert.deepEqual([r1[0], r1[1], r1[6], r1[8], r1[9], r1[12]], ['1', '0.001', '', '', '0.25', '1'], 'no validation loss recorded: an empty cell');
  assert.deepEqual(csv[2]!.split(',').slice(0, 2), ['2', '0.0001']);
  const mc = scalarsCsv([epoch(1, { valClassDice: { 'left lung': 0.5, heart: 0.25 } })]).split('\n')[0]!;
  assert.match(mc, /val_dice_left_lung,val_dice_heart/);
});

/** An epoch with the validation loss (total and terms), as train() records it. */
const withVal = (e: number, over: Partial<EpochMetrics> = {}): EpochMetrics => epoch(e, { valLoss: 2.5 / e, valLosses: { bce: 0.6 / e, dice: 0.95 / e, focal: 0.2 / e }, ...over });

test('scalars CSV: the validation loss and each of its terms per epoch, empty for epochs recorded without it', () => {
  const csv = scalarsCsv([epoch(1), withVal(2), withVal(3)]).trim().split('\n').map((l) => l.split(','));
  const header = csv[0]!;
  assert.deepEqual(header.slice(0, 11), ['epoch', 'lr', 'train_loss', 'train_bce', 'train_dice', 'train_focal', 'val_loss', 'val_loss_bce', 'val_loss_dice', 'val_loss_focal', 'val_dice']);
  const col = (name: string, row: number): string => csv[row]![header.indexOf(name)]!;
  assert.deepEqual(['val_loss', 'val_loss_bce', 'val_loss_dice', 'val_loss_focal'].map((c) => col(c, 1)), ['', '', '', ''], 'epoch 1 (an older checkpoint) has none');
  assert.equal(Number(col('val_loss', 3)), 2.5 / 3);
  assert.equal(Number(col('val_loss_dice', 2)), 0.95 / 2);
  assert.equal(Number(col('val_dice', 2)), 1 - 1 / 3, 'val_dice stays the validation Dice');
  const mc = scalarsCsv([withVal(1, { trainLosses: { ce: 1, dice: 0.5, focal: 0.1 }, valLosses: { ce: 1.2, dice: 0.6, focal: 0.2 } })]).split('\n')[0]!;
  assert.match(mc, /,train_ce,train_dice,train_focal,val_loss,val_loss_ce,val_loss_dice,val_loss_focal,val_dice,/, 'the multi-class terms by their names');
});

test('curves: training and validation loss, total and per term (validation dashed), one legend row per term', () => {
  const svg = curvesSvg([1, 2, 3].map((e) => withVal(e)), 'with validation loss');
  assert.equal(svg.match(/<polyline/g)?.length, 11, 'train and validation total, three terms each train and validation, two Dice series, the learning rate');
  // The validation total: dashed, in the total's colour, through the recorded values.
  const dashedTotal = svg.match(/<polyline points="([^"]+)" fill="none" stroke="#1f77b4" stroke-width="2" stroke-dasharray/g);
  assert.equal(dashedTotal?.length, 1);
  for (const label of ['bce', 'dice loss', 'focal']) assert.equal(svg.split(`>${label}</text>`).length - 1, 1, `one legend row for ${label}`);
  assert.match(svg, /train solid, validation dashed/);
  // A history resumed from a checkpoint without validation loss: the validation series start where it was recorded.
  const mixed = curvesSvg([epoch(1), epoch(2), withVal(3), withVal(4)], 'resumed');
  const line = mixed.match(/<polyline points="([^"]+)" fill="none" stroke="#1f77b4" stroke-width="2" stroke-dasharray/);
  assert.equal(line?.[1]!.split(' ').length, 2, 'the validation total has points for epochs 3 and 4 only');
  assert.doesNotMatch(curvesSvg([epoch(1), epoch(2)], 'old'), /validation dashed/, 'no validation series without any validation loss');
});

test('the per-epoch report rewrites curves and scalars in place', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'trainer-report-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeEpochReport(dir, [epoch(1)], 'live');
  const out = await writeEpochReport(dir, [epoch(1), epoch(2)], 'live');
  assert.equal((await readFile(out.scalars, 'utf8')).trim().split('\n').length, 3);
  assert.equal((await sharp(out.curves).metadata()).format, 'png');
});
