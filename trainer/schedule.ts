/**
 * Learning-rate schedule: PyTorch's MultiStepLR stepped once per epoch, as in the SIIM pipeline.
 * lr(epoch) = base * gamma ^ (number of milestones <= epoch), epochs counted from 0, so with
 * milestones [3, 5, ...] epochs 0..2 run at the base rate and epoch 3 is the first decayed one.
 */
export interface MultiStepSchedule {
  lr: number;
  milestones: number[];
  gamma: number;
}

/** Seed 004's schedule: Adam 1e-4, milestones [3,5,6,7,8,9,10,11,13,15], gamma 0.75. */
export const SIIM_MILESTONES = [3, 5, 6, 7, 8, 9, 10, 11, 13, 15] as const;
export const SIIM_GAMMA = 0.75;

export function learningRate(s: MultiStepSchedule, epoch: number): number {
  let k = 0;
  for (const m of s.milestones) if (m <= epoch) k++;
  return s.lr * Math.pow(s.gamma, k);
}

export function validateSchedule(s: MultiStepSchedule): string | undefined {
  if (!(s.lr > 0) || !Number.isFinite(s.lr)) return `lr must be a positive number, got ${s.lr}`;
  if (!(s.gamma > 0 && s.gamma <= 1)) return `gamma must be in (0, 1], got ${s.gamma}`;
  for (let i = 0; i < s.milestones.length; i++) {
    const m = s.milestones[i]!;
    if (!Number.isInteger(m) || m < 1) return `milestones must be positive integers, got ${m}`;
    if (i > 0 && m <= s.milestones[i - 1]!) return 'milestones must be strictly increasing';
  }
  return undefined;
}
