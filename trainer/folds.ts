/**
 * Stratified k-fold split on has-mask, as the SIIM pipeline does with sklearn's StratifiedKFold:
 * every fold gets (within one image) the same share of positive images. Deterministic given the
 * seed and independent of the order the files were found in (samples are keyed by id).
 *
 * Samples that carry a `group` (the patient: in the pairs layout, the image's folder) are kept
 * together, as sklearn's StratifiedGroupKFold does: all slices of one patient land in the same
 * fold, so no patient is both trained on and validated on. Groups are dealt largest first to the
 * fold whose size and positive count would stay lowest relative to their targets, which balances
 * fold sizes to within about one group and keeps the positive share close where the groups allow.
 */
import { Stream, shuffled, streamRng, type Rng } from './rng.ts';

export interface Stratifiable {
  readonly id: string;
  readonly hasMask: boolean;
  /** Samples with the same group always share a fold (e.g. the slices of one patient). */
  readonly group?: string;
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

  const groups = new Map<string, number[]>();
  for (const s of byId) {
    const g = samples[s.i]!.group;
    if (g === undefined) continue;
    let members = groups.get(g);
    if (!members) groups.set(g, (members = []));
    members.push(s.i);
  }
  if ([...groups.values()].some((m) => m.length > 1)) return assignGroupedFolds(samples, byId, folds, rng, out);

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

function assignGroupedFolds(
  samples: readonly Stratifiable[],
  byId: ReadonlyArray<{ id: string; i: number; pos: boolean }>,
  folds: number,
  rng: Rng,
  out: number[],
): number[] {
  // Units: one per group; a sample without a group is a unit of its own. Keyed in id order, so the
  // result does not depend on the order the samples came in.
  const units = new Map<string, number[]>();
  for (const s of byId) {
    const g = samples[s.i]!.group;
    const key = g === undefined ? `\0${s.id}\0${s.i}` : g;
    let members = units.get(key);
    if (!members) units.set(key, (members = []));
    members.push(s.i);
  }
  if (units.size < folds) {
    throw new FoldError(`${units.size} patients (image folders) cannot be split into ${folds} folds; every patient's images stay in one fold`);
  }
  const list = shuffled(
    [...units.values()].map((members) => ({ members, n: members.length, pos: members.filter((i) => samples[i]!.hasMask).length })),
    rng,
  );
  // Largest first (stable after the seeded shuffle, so equal sizes come in a seeded order).
  list.sort((a, b) => b.n - a.n || b.pos - a.pos);
  const total = samples.length;
  const positives = samples.filter((s) => s.hasMask).length;
  const size = new Array<number>(folds).fill(0);
  const pos = new Array<number>(folds).fill(0);
  for (const u of list) {
    let best = 0;
    let bestCost = Infinity;
    for (let f = 0; f < folds; f++) {
      const n = (size[f]! + u.n) / total;
      const p = positives > 0 ? (pos[f]! + u.pos) / positives : 0;
      const cost = n * n + p * p;
      if (cost < bestCost) {
        bestCost = cost;
        best = f;
      }
    }
    size[best]! += u.n;
    pos[best]! += u.pos;
    for (const i of u.members) out[i] = best;
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
