/**
 * Seeded randomness for the trainer. Every random draw (fold assignment, epoch shuffle, augmentation)
 * comes from a stream derived from (seed, purpose, epoch, index), never from a shared running
 * generator, so that a run resumed at epoch k draws exactly what an uninterrupted run would, and
 * the order in which prefetched batches are augmented cannot change the result.
 */

import { Rng, deriveSeed } from '../core/rng.ts';

export { Rng, deriveSeed };

/** Purposes get distinct streams even for equal (epoch, index). */
export const Stream = { folds: 1, shuffle: 2, augment: 3, preview: 4, init: 5, limit: 6 } as const;

export function streamRng(seed: number, purpose: number, ...parts: number[]): Rng {
  return new Rng(deriveSeed(seed, purpose, ...parts));
}

/** Fisher-Yates on a copy. */
export function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}
