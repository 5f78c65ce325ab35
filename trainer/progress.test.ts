import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BAR_SIZE, epochLine, TRAIN_BAR, VAL_BAR } from './progress.ts';
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

test('the epoch line puts validation Dice beside the all-empty baseline within 80 columns', () => {
  const [head, details] = epochLine(m, 100).split('\n');
  assert.ok(head!.length <= 80, `${head!.length}: ${head}`);
  assert.match(head!, /val Dice 0\.5000 \(empty 0\.5000\)/);
  assert.match(head!, /lr 1\.2e-4/);
  assert.match(details!, /bce 0\.5000 dice 0\.9000 focal 0\.1000/);
  assert.doesNotMatch(epochLine({ ...m, valBaseline: undefined }, 100), /empty/);
});
