import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learningRate, validateSchedule, SIIM_MILESTONES, SIIM_GAMMA } from './schedule.ts';

test('MultiStepLR with the SIIM milestones matches PyTorch per-epoch values', () => {
  const s = { lr: 1e-4, milestones: [...SIIM_MILESTONES], gamma: SIIM_GAMMA };
  // torch: [g['lr'] for each epoch after scheduler.step()] -> base for epochs 0..2, then x0.75 at each milestone
  const expected = [1, 1, 1, 0.75, 0.75, 0.75 ** 2, 0.75 ** 3, 0.75 ** 4, 0.75 ** 5, 0.75 ** 6, 0.75 ** 7, 0.75 ** 8, 0.75 ** 8, 0.75 ** 9, 0.75 ** 9, 0.75 ** 10, 0.75 ** 10];
  expected.forEach((f, epoch) => assert.ok(Math.abs(learningRate(s, epoch) - 1e-4 * f) < 1e-15, `epoch ${epoch}`));
});

test('schedule validation names the problem', () => {
  assert.equal(validateSchedule({ lr: 1e-3, milestones: [2, 4], gamma: 0.5 }), undefined);
  assert.match(validateSchedule({ lr: 0, milestones: [], gamma: 0.5 })!, /lr/);
  assert.match(validateSchedule({ lr: 1, milestones: [4, 2], gamma: 0.5 })!, /increasing/);
  assert.match(validateSchedule({ lr: 1, milestones: [2], gamma: 1.5 })!, /gamma/);
});
