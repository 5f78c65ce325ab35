/**
 * Seeded PRNG for the phantoms. Everything random in synth/ draws from an `Rng` so that the same
 * seed gives the same bytes on every machine (Math.random is never used).
 *
 * The generator is mulberry32: 32-bit state, fast, good enough statistically for image noise,
 * and trivially portable (the same sequence in any language, which helps when cross-checking).
 */
import { Rng as SeededRng, deriveSeed } from '../core/rng.ts';

export type Rng = () => number;

export function mulberry32(seed: number): Rng {
  const r = new SeededRng(seed);
  return () => r.next();
}

export { deriveSeed };

export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

/** Integer in [lo, hi] inclusive. */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** Standard normal via Box-Muller (one value per call; simplicity over speed, it is not hot). */
export function normal(rng: Rng, mean = 0, sd = 1): number {
  let u = rng();
  while (u <= Number.EPSILON) u = rng();
  const v = rng();
  return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function chance(rng: Rng, p: number): boolean {
  return rng() < p;
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  if (items.length === 0) throw new RangeError('pick from an empty list');
  return items[Math.floor(rng() * items.length)] as T;
}
