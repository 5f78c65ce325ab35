/**
 * Raw sessions in worker threads, no engine: N plain ORT sessions, each in its own worker thread
 * (bench/realpath/raw.ts in a child process), running batches back to back. On the H200 the engine's
 * per-batch run grew 48 -> 490 -> 1,302 ms from 2 to 4 to 8 CUDA workers while one session on the main
 * thread ran a batch in 3 ms. These rows tell whether concurrent CUDA sessions in threads are slow by
 * themselves (ORT, the driver, the sandbox) or only inside the engine.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchProvider } from './inference.ts';

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

const RAW = fileURLToPath(new URL('../realpath/raw.ts', import.meta.url));

export function sessionsInThreads(onnxPath: string, inputName: string, provider: BenchProvider, deviceId: number, size: number, batch: number, sessions: number, seconds: number): Promise<SessionsInThreads> {
  const args = ['--import', 'tsx', RAW, '--onnx', onnxPath, '--input', inputName, '--size', String(size), '--batch', String(batch), '--sessions', String(sessions), '--threads', '1', '--seconds', String(seconds), '--provider', provider, '--device-id', String(deviceId)];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    // Session creation and warm-up come on top of the timed window; a hung child must not hold the run.
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 60) * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const base = { provider, size, sessions, batch };
      try {
        const r = JSON.parse(out.trim().split('\n').pop() ?? '') as { imagesPerSecond: number; p50Ms: number; p99Ms: number };
        resolve({ ...base, imagesPerSec: r.imagesPerSecond, p50Ms: r.p50Ms, p99Ms: r.p99Ms });
      } catch {
        const why = err.trim().split('\n').filter(Boolean).slice(-2).join(' | ') || `exit ${code}`;
        resolve({ ...base, imagesPerSec: 0, p50Ms: NaN, p99Ms: NaN, error: why.slice(0, 300) });
      }
    });
  });
}
