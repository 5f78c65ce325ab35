/**
 * Stratified k-fold split on has-mask, as the SIIM pipeline does with sklearn's StratifiedKFold:
 * every fold gets (within one image) the same share of positive images. Deterministic given the
 * seed and independent of the order the files were found in (samples are keyed by id).
 */
import { Stream, shuffled, streamRng } from './rng.ts';

export interface Stratifiable {
  readonly id: string;
  readonly hasMask: boolean;
}

export class FoldError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FoldError';
  }
}

/** Fold index (0..folds-1) for each sample, in the samples' order. */
export function assignFolds(samples: readonly Stratifiable[], folds: number, seed: number): number[] {
  if (!Number.isInteger(folds) || folds < 2) throw new FoldError(`folds must be an integer >= 2, got ${folds}`);
  if (samples.length < folds) throw new FoldError(`${samples.length} images cannot be split into ${folds} folds`);
  const byId = samples.map((s, i) => ({ id: s.id, i, pos: s.hasMask }));
  byId.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.i - b.i));
  const out = new Array<number>(samples.length).fill(-1);
  const rng = streamRng(seed, Stream.folds);
  // Deal positives then negatives round-robin, continuing the rotation across classes so fold sizes
  // differ by at most one overall, not just within each class.
  let next = 0;
  for (const cls of [true, false]) {
    const members = shuffled(byId.filter((s) => s.pos === cls), rng);
    for (const m of members) {
      out[m.i] = next;
      next = (next + 1) % folds;
    }
  }
  return out;
}

export interface FoldSplit<T> {
  train: T[];
  val: T[];
}

export function splitFold<T extends Stratifiable>(samples: readonly T[], folds: number, fold: number, seed: number): FoldSplit<T> {
  if (!Number.isInteger(fold) || fold < 0 || fold >= folds) throw new FoldError(`fold must be in 0..${folds - 1}, got ${fold}`);
  const f = assignFolds(samples, folds, seed);
  const train: T[] = [];
  const val: T[] = [];
  samples.forEach((s, i) => (f[i] === fold ? val : train).push(s));
  return { train, val };
}
