import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BAR_SIZE, batchLine, epochLine, TRAIN_BAR, VAL_BAR } from './progress.ts';
import type { EpochMetrics } from './run/types.ts';

const m: EpochMetrics = {
  epoch: 12,
  lr: 1.234e-4,
  trainLoss: 12.3456,
  trainLosses: { bce: 0.5, dice: 0.9, focal: 0.1 },
  valDice: 0.5,
  valBaseline: 0.5,
  valDiceOriginal: 0.49,
  trainImagesPerSecond: 1234.5,
  seconds: 3700,
  best: true,
};

/** A bar format filled with the widest values it shows. */
const fill = (f: string, v: Record<string, string>): string => f.replace(/\{(\w+)\}/g, (_, k: string) => (k === 'bar' ? '#'.repeat(BAR_SIZE) : v[k]!));

test('the progress bars fit 80 columns and show a Dice number', () => {
  const v = { ep: '100/100', value: '9999', total: '9999', loss: '12.3456', dice: '0.1234', ips: '1234.5', eta_formatted: '99h59m' };
  for (const f of [TRAIN_BAR, VAL_BAR]) {
    const s = fill(f, v);
    assert.ok(s.length <= 80, `${s.length} columns: ${s}`);
    assert.match(s, /Dice 0\.1234/);
  }
});

test('the epoch line puts validation Dice beside the all-empty baseline, training beside validation loss, every line within 80 columns', () => {
  // The widest figures: 12.3456 losses, 1234.5 img/s, an hour.
  const wide: EpochMetrics = { ...m, valLoss: 12.3456, valLosses: { bce: 10.5, dice: 0.9, focal: 10.1 }, trainLosses: { bce: 10.5, dice: 0.9, focal: 10.1 } };
  const lines = epochLine(wide, 100).split('\n');
  for (const l of lines) assert.ok(l.length <= 80, `${l.length}: ${l}`);
  const [head, train, val] = lines;
  assert.match(head!, /^epoch  12\/100  loss 12\.3456 val 12\.3456  val Dice 0\.5000 \(empty 0\.5000\)  \* best$/);
  assert.match(train!, /^  train bce 10\.5000 dice 0\.9000 focal 10\.1000  lr 1\.2e-4  1234\.5 img\/s  1h01m$/);
  assert.match(val!, /^  val   bce 10\.5000 dice 0\.9000 focal 10\.1000  original res 0\.4900$/, 'validation terms under the training ones');
  assert.doesNotMatch(epochLine({ ...m, valBaseline: undefined }, 100), /empty/);
  // An epoch recorded before the validation loss was (a resumed older run): no validation loss shown.
  const old = epochLine(m, 100);
  assert.doesNotMatch(old, /val \d|val   /);
  assert.match(old, /original res 0\.4900/);
  // Multi-class: a line of per-class Dice.
  assert.match(epochLine({ ...m, valClassDice: { lung: 0.9, heart: 0.8 } }, 100).split('\n').at(-1)!, /^  class Dice lung 0\.9000 heart 0\.8000$/);
});

test('the in-epoch line (no terminal) fits 80 columns', () => {
  const s = batchLine({ epoch: 100, batch: 9999, batches: 9999, loss: 12.3456, losses: { bce: 1, dice: 1, focal: 1 }, imagesPerSecond: 1234.5, lr: 1.234e-4 }, 100);
  assert.ok(s.length <= 80, `${s.length}: ${s}`);
  assert.match(s, /loss 12\.3456  lr 1\.2e-4/);
});
