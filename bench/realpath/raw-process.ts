/**
 * raw.ts as a child process (so its CPU time and RSS are its own): the options it takes and the one
 * JSON line it prints. bench/realpath/run.ts (CPU plans) and bench/gpu/threads.ts (CUDA sessions in
 * threads) both run it through here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface RawOptions {
  onnx: string;
  input: string;
  size: number;
  batch: number;
  sessions: number;
  /** Intra-op threads per session. */
  threads: number;
  seconds: number;
  provider?: 'cpu' | 'cuda';
  deviceId?: number;
}

export interface RawResult {
  imagesPerSecond: number;
  images: number;
  /** One batch's session.run, over every session's runs (ms). */
  p50Ms: number;
  p99Ms: number;
  cpuMsPerImage: number;
  rssMiB: number;
}

const RAW = fileURLToPath(new URL('./raw.ts', import.meta.url));

/**
 * Runs raw.ts and resolves its result; rejects with its exit status and error line (its stderr
 * is also passed through as it comes). `timeoutMs` kills a child that hangs (session creation and
 * warm-up come on top of `seconds`); `onSpawn` lets a caller kill it on its own exit.
 */
export function runRawProcess(o: RawOptions, opts: { cwd?: string; timeoutMs?: number; onSpawn?: (child: ChildProcess) => void } = {}): Promise<RawResult> {
  const args = ['--import', 'tsx', RAW, '--onnx', o.onnx, '--input', o.input, '--size', String(o.size), '--batch', String(o.batch), '--sessions', String(o.sessions), '--threads', String(o.threads), '--seconds', String(o.seconds)];
  if (o.provider) args.push('--provider', o.provider);
  if (o.deviceId !== undefined) args.push('--device-id', String(o.deviceId));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { ...(opts.cwd ? { cwd: opts.cwd } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
    opts.onSpawn?.(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      process.stderr.write(b);
    });
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last) return resolve(JSON.parse(last) as RawResult);
      // An uncaught error prints a source excerpt, then `SomethingError: message`, then its stack.
      const lines = err.split('\n').map((l) => l.trim()).filter(Boolean);
      const why = lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.at(-1) ?? '';
      reject(new Error(`raw.ts exited with ${signal ?? code}${why ? `: ${why.slice(0, 300)}` : ''}`));
    });
  });
}
