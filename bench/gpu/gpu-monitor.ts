/**
 * GPU utilisation and memory sampled by nvidia-smi in the background while the benchmark runs, so
 * each measured phase can report how busy the GPU was (a low figure means the host side, not the GPU,
 * limits throughput).
 *
 * nvidia-smi's own timestamp is read with every sample instead of the arrival time: stdout to a pipe
 * may be block-buffered, so samples can arrive in bursts. `stop()` ends it with SIGINT (a clean exit
 * flushes what is buffered) before any phase is summarised.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface GpuSample {
  /** Epoch ms. */
  t: number;
  utilPct: number;
  memUsedMiB: number;
}

export interface GpuUsage {
  samples: number;
  utilMeanPct: number;
  utilMaxPct: number;
  memMaxMiB: number;
}

export interface GpuInfo {
  name: string;
  driver: string;
  memoryTotalMiB: number;
}

/** nvidia-smi's "2026/11/13 10:11:12.345" (local time) -> epoch ms. */
export function parseSmiTimestamp(s: string): number {
  const m = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$/.exec(s.trim());
  if (!m) return Number.NaN;
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  return new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, ms).getTime();
}

/** One CSV line "timestamp, util, mem" (noheader, nounits) -> sample, or undefined if it is not one. */
export function parseSmiLine(line: string): GpuSample | undefined {
  const parts = line.split(',').map((x) => x.trim());
  if (parts.length < 3) return undefined;
  const t = parseSmiTimestamp(parts[0]!);
  const utilPct = Number(parts[1]);
  const memUsedMiB = Number(parts[2]);
  if (!Number.isFinite(t) || !Number.isFinite(utilPct) || !Number.isFinite(memUsedMiB)) return undefined;
  return { t, utilPct, memUsedMiB };
}

export function summarise(samples: readonly GpuSample[], t0: number, t1: number): GpuUsage | undefined {
  const inside = samples.filter((s) => s.t >= t0 && s.t <= t1);
  if (inside.length === 0) return undefined;
  return {
    samples: inside.length,
    utilMeanPct: inside.reduce((a, s) => a + s.utilPct, 0) / inside.length,
    utilMaxPct: Math.max(...inside.map((s) => s.utilPct)),
    memMaxMiB: Math.max(...inside.map((s) => s.memUsedMiB)),
  };
}

export async function gpuInfo(deviceId: number): Promise<GpuInfo | { error: string }> {
  try {
    const { stdout } = await run('nvidia-smi', [`--id=${deviceId}`, '--query-gpu=name,driver_version,memory.total', '--format=csv,noheader,nounits'], { timeout: 20_000 });
    const [name, driver, mem] = stdout.trim().split('\n')[0]!.split(',').map((x) => x.trim());
    return { name: name ?? '?', driver: driver ?? '?', memoryTotalMiB: Number(mem) };
  } catch (e) {
    return { error: `nvidia-smi: ${(e as Error).message.split('\n')[0]}` };
  }
}

export class GpuMonitor {
  readonly samples: GpuSample[] = [];
  /** Why there are no samples, when there are none. */
  unavailable?: string;
  private proc?: ChildProcess;
  private buffered = '';
  private exited?: Promise<void>;

  private constructor() {}

  /** Starts sampling every `intervalMs`; never throws (a missing nvidia-smi is recorded in `unavailable`). */
  static start(deviceId: number, intervalMs = 200): GpuMonitor {
    const m = new GpuMonitor();
    const args = [`--id=${deviceId}`, '--query-gpu=timestamp,utilization.gpu,memory.used', '--format=csv,noheader,nounits', `-lms`, String(intervalMs)];
    // Line-buffer nvidia-smi's stdout where coreutils' stdbuf exists.
    const stdbuf = ['/usr/bin/stdbuf', '/bin/stdbuf'].find((p) => existsSync(p));
    const proc = stdbuf ? spawn(stdbuf, ['-oL', 'nvidia-smi', ...args]) : spawn('nvidia-smi', args);
    m.proc = proc;
    let stderr = '';
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => m.consume(chunk));
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    m.exited = new Promise((resolve) => {
      proc.on('error', (e) => {
        m.unavailable = `nvidia-smi could not be started: ${e.message}`;
        resolve();
      });
      proc.on('exit', (code, signal) => {
        if (m.samples.length === 0 && !m.unavailable) m.unavailable = `nvidia-smi exited (${signal ?? code}) without samples: ${stderr.trim().split('\n')[0] ?? ''}`;
        resolve();
      });
    });
    return m;
  }

  private consume(chunk: string): void {
    this.buffered += chunk;
    const lines = this.buffered.split('\n');
    this.buffered = lines.pop() ?? '';
    for (const line of lines) {
      const s = parseSmiLine(line);
      if (s) this.samples.push(s);
    }
  }

  usage(t0: number, t1: number): GpuUsage | undefined {
    return summarise(this.samples, t0, t1);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return this.exited;
    p.kill('SIGINT');
    const timer = setTimeout(() => p.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(timer);
    if (this.buffered) this.consume('\n');
  }
}
