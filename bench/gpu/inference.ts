/**
 * Raw onnxruntime sessions (no engine): creation on a chosen provider with no fallback, first-run cost
 * of each new batch shape, back-to-back throughput with input and output on CPU tensors (as the
 * service's workers run them), and where ORT placed each node (from its profiler).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { Rng } from '../../core/rng.ts';
import { median, oneLine, percentile, timeLoop } from './measure.ts';

export type BenchProvider = 'cpu' | 'cuda';

export interface OpenedRaw {
  session?: ort.InferenceSession;
  createMs: number;
  /** ORT's reason, one line, when the session could not be created. */
  error?: string;
}

export function rawSessionOptions(provider: BenchProvider, deviceId: number, extra: Partial<ort.InferenceSession.SessionOptions> = {}): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    intraOpNumThreads: availableParallelism(),
    logSeverityLevel: 3,
    executionProviders: provider === 'cuda' ? [{ name: 'cuda', deviceId }] : ['cpu'],
    ...extra,
  };
}

/** Open `model` on exactly `provider` (no CPU fallback here: a failure is the result). */
export async function openRaw(model: string | Uint8Array, provider: BenchProvider, deviceId: number, extra: Partial<ort.InferenceSession.SessionOptions> = {}): Promise<OpenedRaw> {
  const t0 = performance.now();
  try {
    const opts = rawSessionOptions(provider, deviceId, extra);
    const session = typeof model === 'string' ? await ort.InferenceSession.create(model, opts) : await ort.InferenceSession.create(model, opts);
    return { session, createMs: performance.now() - t0 };
  } catch (e) {
    return { createMs: performance.now() - t0, error: oneLine(e) };
  }
}

export function randomInput(batch: number, channels: number, size: number, seed = 1): ort.Tensor {
  const rng = new Rng(seed);
  const data = new Float32Array(batch * channels * size * size);
  for (let i = 0; i < data.length; i++) data[i] = rng.next();
  return new ort.Tensor('float32', data, [batch, channels, size, size]);
}

export interface ShapeCost {
  size: number;
  batch: number;
  /** First run at this batch size in this session: shape inference, allocation, cuDNN algorithm search. */
  firstRunMs: number;
  /** The run right after it. */
  secondRunMs: number;
}

/** First-run and second-run time of each batch size, in ascending order, on a session that has not run them yet. */
export async function shapeCosts(session: ort.InferenceSession, inputName: string, channels: number, size: number, batches: number[]): Promise<ShapeCost[]> {
  const out: ShapeCost[] = [];
  for (const batch of [...new Set(batches)].sort((a, b) => a - b)) {
    const feeds = { [inputName]: randomInput(batch, channels, size, batch) };
    let t = performance.now();
    await session.run(feeds);
    const firstRunMs = performance.now() - t;
    t = performance.now();
    await session.run(feeds);
    out.push({ size, batch, firstRunMs, secondRunMs: performance.now() - t });
  }
  return out;
}

export interface RawThroughput {
  provider: BenchProvider;
  size: number;
  batch: number;
  runs: number;
  imagesPerSec: number;
  msPerBatchMedian: number;
  msPerBatchP90: number;
}

/** Back-to-back session.run at one batch size (two untimed runs first). */
export async function rawThroughput(session: ort.InferenceSession, provider: BenchProvider, inputName: string, channels: number, size: number, batch: number, seconds: number): Promise<RawThroughput> {
  const feeds = { [inputName]: randomInput(batch, channels, size, 7 + batch) };
  for (let i = 0; i < 2; i++) await session.run(feeds);
  const t = await timeLoop(() => session.run(feeds), seconds, 3);
  return {
    provider,
    size,
    batch,
    runs: t.runs,
    imagesPerSec: (t.runs * batch * 1000) / t.totalMs,
    msPerBatchMedian: median(t.runMs),
    msPerBatchP90: percentile(t.runMs, 90),
  };
}

export interface ProviderShare {
  provider: string;
  nodes: number;
  kernelMs: number;
  /** Op types of the nodes placed on this provider (sorted, unique). */
  ops: string[];
}

interface ProfileEvent {
  cat?: string;
  name?: string;
  dur?: number;
  args?: { op_name?: string; provider?: string };
}

/** Per provider: distinct nodes, kernel time and op types, from an ORT profile (all runs in it). */
export function placementFromProfile(events: ProfileEvent[]): ProviderShare[] {
  const by = new Map<string, { nodes: Set<string>; us: number; ops: Set<string> }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time')) continue;
    const provider = e.args?.provider ?? '?';
    let s = by.get(provider);
    if (!s) by.set(provider, (s = { nodes: new Set(), us: 0, ops: new Set() }));
    s.nodes.add(e.name);
    s.us += e.dur ?? 0;
    if (e.args?.op_name) s.ops.add(e.args.op_name);
  }
  return [...by]
    .map(([provider, s]) => ({ provider, nodes: s.nodes.size, kernelMs: s.us / 1000, ops: [...s.ops].sort() }))
    .sort((a, b) => b.kernelMs - a.kernelMs);
}

/** Read the newest ORT profile file (prefix_*.json) in `dir`. */
export async function readProfile(dir: string, prefix: string): Promise<ProfileEvent[]> {
  const files = (await readdir(dir)).filter((f) => f.startsWith(prefix) && f.endsWith('.json')).sort();
  const file = files.at(-1);
  if (!file) throw new Error(`no ORT profile ${prefix}_*.json in ${dir}`);
  return JSON.parse(await readFile(join(dir, file), 'utf8')) as ProfileEvent[];
}

/** Where ORT places the inference graph's nodes on `provider` (one profiled run at batch 1 after one untimed run). */
export async function inferencePlacement(model: string, provider: BenchProvider, deviceId: number, inputName: string, channels: number, size: number): Promise<ProviderShare[]> {
  const dir = await mkdtemp(join(tmpdir(), 'gpu-bench-profile-'));
  try {
    const opened = await openRaw(model, provider, deviceId, { enableProfiling: true, profileFilePrefix: join(dir, 'infer') });
    if (!opened.session) throw new Error(opened.error);
    const feeds = { [inputName]: randomInput(1, channels, size) };
    await opened.session.run(feeds);
    await opened.session.run(feeds);
    opened.session.endProfiling();
    await opened.session.release();
    return placementFromProfile(await readProfile(dir, 'infer'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Why a CUDA session may have failed, from outside ORT: onnxruntime-node's JS error only says
 * "Failed to load shared library"; the missing dependency is visible to ldd.
 */
export async function cudaProviderDiagnosis(): Promise<string> {
  const pkg = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
  const version = (JSON.parse(await readFile(pkg, 'utf8')) as { version: string }).version;
  const lib = join(dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so');
  if (!existsSync(lib)) return `onnxruntime-node ${version} has no libonnxruntime_providers_cuda.so next to its binding (install the kit: bench/gpu/device-setup.sh)`;
  try {
    const { stdout } = await promisify(execFile)('ldd', [lib], { timeout: 20_000 });
    const missing = stdout
      .split('\n')
      .filter((l) => l.includes('not found'))
      .map((l) => l.trim().split(/\s+/)[0]);
    return missing.length
      ? `onnxruntime-node ${version}: the CUDA provider's libraries not found: ${missing.join(', ')} (LD_LIBRARY_PATH: source the kit's env.sh)`
      : `onnxruntime-node ${version}: every library the CUDA provider links resolves; see ORT's native message in the log (cuDNN is loaded later, by name libcudnn.so)`;
  } catch (e) {
    return `ldd failed: ${oneLine(e)}`;
  }
}
