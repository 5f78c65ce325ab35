/**
 * Raw onnxruntime throughput with the service's own session options (core/engine/session-factory.ts):
 * `workers` sessions, each in its own worker thread (as the engine runs them), each running batches
 * of `batch` random images back to back. This is the ceiling the service is compared against.
 */
import { readFileSync } from 'node:fs';
import type { SessionConfig } from '../core/runtime/session.ts';
import { spawnWorker } from '../core/engine/worker-pool.ts';
import type { RawWorkerData } from './raw-ort-worker.ts';

export interface RawOptions {
  onnxPath: string;
  inputName: string;
  /** Model input C, H, W. */
  chw: [number, number, number];
  batch: number;
  workers: number;
  session: SessionConfig;
  seconds: number;
}

export interface RawResult {
  imagesPerSecond: number;
  /** Mean wall time of one session.run at `batch`. */
  msPerBatch: number;
  /** CPU time of this whole process (all threads) per image while the sessions ran. */
  cpuMsPerImage: number;
}

const ENTRY = new URL('./raw-ort-worker.ts', import.meta.url);

export async function rawThroughput(o: RawOptions): Promise<RawResult> {
  const workers = Array.from({ length: o.workers }, (_, i) =>
    spawnWorker(ENTRY, { onnxPath: o.onnxPath, inputName: o.inputName, shape: [o.batch, ...o.chw], session: o.session } satisfies RawWorkerData, `raw-ort-${i}`),
  );
  try {
    const next = (w: (typeof workers)[number]) =>
      new Promise<any>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
    await Promise.all(workers.map(next));
    const cpu0 = processCpuSeconds(process.pid);
    const t0 = performance.now();
    const endAt = performance.timeOrigin + t0 + o.seconds * 1000;
    const done = workers.map(next);
    for (const w of workers) w.postMessage({ endAt });
    const results = (await Promise.all(done)) as Array<{ batches: number; runMs: number }>;
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = processCpuSeconds(process.pid) - cpu0;
    const batches = results.reduce((a, r) => a + r.batches, 0);
    const runMs = results.reduce((a, r) => a + r.runMs, 0);
    return { imagesPerSecond: (batches * o.batch) / elapsed, msPerBatch: runMs / batches, cpuMsPerImage: (cpu * 1000) / (batches * o.batch) };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc (Linux; NaN elsewhere). */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
/** USER_HZ: 100 on every Linux architecture Node supports. */
const CLOCK_TICKS = 100;
