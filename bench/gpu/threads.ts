/**
 * Raw sessions in worker threads, no engine: N plain ORT sessions, each in its own worker thread
 * (bench/realpath/raw.ts in a child process), running batches back to back. On the H200 the engine's
 * per-batch run grew 48 -> 490 -> 1,302 ms from 2 to 4 to 8 CUDA workers while one session on the main
 * thread ran a batch in 3 ms. These rows tell whether concurrent CUDA sessions in threads are slow by
 * themselves (ORT, the driver, the sandbox) or only inside the engine.
 */
import { runRawProcess } from '../realpath/raw-process.ts';
import type { BenchProvider } from './inference.ts';
import { oneLine } from './measure.ts';

export interface SessionsInThreads {
  provider: BenchProvider;
  size: number;
  sessions: number;
  batch: number;
  imagesPerSec: number;
  /** One batch's session.run, over every session's runs (ms). */
  p50Ms: number;
  p99Ms: number;
  error?: string;
}

export async function sessionsInThreads(onnxPath: string, inputName: string, provider: BenchProvider, deviceId: number, size: number, batch: number, sessions: number, seconds: number): Promise<SessionsInThreads> {
  const base = { provider, size, sessions, batch };
  try {
    // Session creation and warm-up come on top of the timed window; a hung child must not hold the run.
    const r = await runRawProcess({ onnx: onnxPath, input: inputName, size, batch, sessions, threads: 1, seconds, provider, deviceId }, { timeoutMs: (seconds + 60) * 1000 });
    return { ...base, imagesPerSec: r.imagesPerSecond, p50Ms: r.p50Ms, p99Ms: r.p99Ms };
  } catch (e) {
    return { ...base, imagesPerSec: 0, p50Ms: NaN, p99Ms: NaN, error: oneLine(e) };
  }
}
