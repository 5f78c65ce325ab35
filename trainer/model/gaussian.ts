import type { Rng } from '../../core/rng.ts';

/**
 * Standard normals drawn from the project's one generator (`core/rng.ts`) by Box-Muller in pairs:
 * each pair of uniforms gives two normals, the cosine one returned now and the sine one on the next
 * call. This is the sequence the trainer's He-normal initial weights and the gradient checks have
 * always used; `Rng.normal()` keeps one normal per pair, a different sequence. Uniform draws taken
 * from `rng` between calls do not disturb the held-back second normal.
 */
export function gaussian(rng: Rng): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = rng.next();
    const v = rng.next();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}
