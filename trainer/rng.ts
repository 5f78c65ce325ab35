/**
 * Seeded randomness for the trainer. Every random draw (fold assignment, epoch shuffle, augmentation)
 * comes from a stream derived from (seed, purpose, epoch, index), never from a shared running
 * generator, so that a run resumed at epoch k draws exactly what an uninterrupted run would, and
 * the order in which prefetched batches are augmented cannot change the result.
 */

/** mulberry32 with an inspectable state, so a stream can be saved and continued. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** Standard normal (Box-Muller, one value per call). */
  normal(): number {
    let u = this.next();
    while (u <= Number.EPSILON) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  getState(): number {
    return this.state;
  }
  setState(s: number): void {
    this.state = s >>> 0;
  }
}

/** Purposes get distinct streams even for equal (epoch, index). */
export const Stream = { folds: 1, shuffle: 2, augment: 3, preview: 4, init: 5, limit: 6 } as const;

/** A 32-bit seed mixed from a base seed and integers (murmur3-style finaliser per part). */
export function deriveSeed(base: number, ...parts: number[]): number {
  let h = (base ^ 0x9e3779b9) >>> 0;
  for (const p of [...parts, parts.length]) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
  }
  return h >>> 0;
}

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
