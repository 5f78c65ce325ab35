/** Timing helpers shared by the GPU benchmark's sections. */

export interface LoopTiming {
  runs: number;
  totalMs: number;
  /** Per-run wall times, in run order. */
  runMs: number[];
}

/**
 * Run `fn` back to back until `seconds` have passed and at least `minRuns` runs are done (a slow
 * configuration still gets a figure from a few runs rather than one).
 */
export async function timeLoop(fn: () => Promise<unknown>, seconds: number, minRuns = 3, maxRuns = Number.POSITIVE_INFINITY): Promise<LoopTiming> {
  const runMs: number[] = [];
  const t0 = performance.now();
  while ((performance.now() - t0 < seconds * 1000 || runMs.length < minRuns) && runMs.length < maxRuns) {
    const t = performance.now();
    await fn();
    runMs.push(performance.now() - t);
  }
  return { runs: runMs.length, totalMs: performance.now() - t0, runMs };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const median = (values: readonly number[]) => percentile(values, 50);
export const mean = (values: readonly number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN);

/** One line of an error, for tables. */
export function oneLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!.trim();
}

/** Wall clock for a phase, in epoch ms (comparable with nvidia-smi timestamps). */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}
