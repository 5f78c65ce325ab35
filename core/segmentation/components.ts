/**
 * Connected components of a 0/1 mask (8-connectivity, as OpenCV's connectedComponents and the SIIM
 * solutions' post-processing use), for the rules that drop small components or keep the largest.
 */
import { createMask, type Mask } from '../mask.ts';

export interface Components {
  /** Per pixel: 0 for background, else the component's id (1..count). */
  labels: Int32Array;
  /** areas[id] = pixels of component id (areas[0] is unused). */
  areas: number[];
}

/** Two-pass labelling with union-find over the row above and the left neighbour. */
export function connectedComponents(mask: Mask): Components {
  const { rows, cols, data } = mask;
  const labels = new Int32Array(rows * cols);
  const parent: number[] = [0];
  const find = (a: number): number => {
    while (parent[a] !== a) {
      parent[a] = parent[parent[a]!]!;
      a = parent[a]!;
    }
    return a;
  };
  const union = (a: number, b: number): number => {
    const ra = find(a);
    const rb = find(b);
    if (ra === rb) return ra;
    const [lo, hi] = ra < rb ? [ra, rb] : [rb, ra];
    parent[hi] = lo;
    return lo;
  };
  for (let y = 0; y < rows; y++) {
    const o = y * cols;
    for (let x = 0; x < cols; x++) {
      if (data[o + x] === 0) continue;
      // Already-visited 8-neighbours: left, and the three above.
      let id = 0;
      const join = (n: number): void => {
        if (n !== 0) id = id === 0 ? find(n) : union(id, n);
      };
      if (x > 0) join(labels[o + x - 1]!);
      if (y > 0) {
        const u = o - cols + x;
        if (x > 0) join(labels[u - 1]!);
        join(labels[u]!);
        if (x + 1 < cols) join(labels[u + 1]!);
      }
      if (id === 0) {
        id = parent.length;
        parent.push(id);
      }
      labels[o + x] = id;
    }
  }
  // Second pass: provisional ids -> dense ids of their roots.
  const dense = new Int32Array(parent.length);
  const areas: number[] = [0];
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l === 0) continue;
    const r = find(l);
    if (dense[r] === 0) {
      dense[r] = areas.length;
      areas.push(0);
    }
    const d = dense[r]!;
    labels[i] = d;
    areas[d]!++;
  }
  return { labels, areas };
}

/**
 * Removes components smaller than `minComponentArea` pixels and, with `keepLargest`, every component
 * but the largest (the first in raster order on a tie). Returns the given mask when no rule is in
 * force, else a new one (the given mask is left as it was).
 */
export function filterComponents(mask: Mask, o: { minComponentArea?: number; keepLargest?: boolean }): Mask {
  const min = o.minComponentArea ?? 0;
  if (min <= 0 && !o.keepLargest) return mask;
  const { labels, areas } = connectedComponents(mask);
  const keep = areas.map((a) => a >= min);
  if (o.keepLargest) {
    let best = 0;
    for (let id = 1; id < areas.length; id++) if (keep[id] && (best === 0 || areas[id]! > areas[best]!)) best = id;
    for (let id = 1; id < areas.length; id++) keep[id] = id === best;
  }
  const data = mask.data.slice();
  for (let i = 0; i < labels.length; i++) if (labels[i] !== 0 && !keep[labels[i]!]) data[i] = 0;
  // A new mask: the given one may be made from runs (maskFromRuns), which its pixels must keep matching.
  return createMask(mask.rows, mask.cols, data);
}
