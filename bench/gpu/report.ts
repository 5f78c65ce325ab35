/** The GPU benchmark's result (written as JSON) and its markdown rendering. */
import type { SessionsInThreads } from './threads.ts';
import type { FallbackResult, EngineThroughput } from './engine-runs.ts';
import type { GpuInfo, GpuUsage } from './gpu-monitor.ts';
import type { BenchProvider, ProviderShare, RawThroughput, ShapeCost } from './inference.ts';
import type { TrainingResult } from './training.ts';

export interface SessionCreation {
  provider: BenchProvider;
  size: number;
  ok: boolean;
  createMs: number;
  error?: string;
}

export interface CorrectnessRow {
  size: number;
  images: number;
  provider: BenchProvider;
  maxProbDiff: number;
  meanProbDiff: number;
  maskPixels: number;
  maskPixelsDiffering: number;
  /** Differing pixels not explained by a probability within maxProbDiff of the threshold. */
  unexplained: number;
  pass: boolean;
  note?: string;
}

export interface TorchInferenceRow {
  size: number;
  batch: number;
  io: 'cpu' | 'device';
  firstRunMs: number;
  runs: number;
  imagesPerSec: number;
  msPerBatchMedian: number;
}

export interface TorchResult {
  ok: boolean;
  error?: string;
  torch?: string;
  cuda?: string | null;
  cudnn?: number | null;
  gpu?: string;
  cudnnBenchmark?: boolean;
  tf32?: { conv: boolean; matmul: boolean };
  params?: number;
  paramsMatch?: boolean;
  inference?: TorchInferenceRow[];
  train?: { size: number; batch: number; steps: number; firstStepMs: number; stepMsMedian: number; stepMsMean: number; imagesPerSec: number; lossFirst: number; lossLast: number };
  wallMs?: number;
}

export interface Target {
  name: string;
  value: number;
  target: string;
  pass: boolean;
}

export type WithGpu<T> = T & { gpu?: GpuUsage };

export interface BenchReport {
  startedAt: string;
  wallSeconds: number;
  quick: boolean;
  provider: BenchProvider;
  deviceId: number;
  host: { node: string; ort: string; cpu: string; cores: number; loadAverage: number[]; gpu?: GpuInfo | { error: string }; ldLibraryPath?: string };
  model: { depth: number; baseChannels: number; upsample: string; parameters: number };
  gpuSampling: string;
  sessionCreation: SessionCreation[];
  placement: Array<{ graph: string; shares: ProviderShare[] } | { graph: string; error: string }>;
  shapeCosts: ShapeCost[];
  raw: Array<WithGpu<RawThroughput>>;
  /** Optional: reports written before this section existed have none. */
  threads?: Array<WithGpu<SessionsInThreads>>;
  correctness: CorrectnessRow[];
  engine: Array<WithGpu<EngineThroughput>>;
  fallback?: FallbackResult;
  training: Array<WithGpu<TrainingResult>>;
  torch?: TorchResult;
  targets: Target[];
  skipped: string[];
  notes: string[];
}

const f = (v: number | undefined | null, digits = 1) => (v === undefined || v === null || !Number.isFinite(v) ? '-' : v.toFixed(digits));
/** Two cells: utilisation mean / max, peak memory. */
const gpuCols = (g?: GpuUsage): [string, string] => (g ? [`${f(g.utilMeanPct, 0)} / ${f(g.utilMaxPct, 0)}`, f(g.memMaxMiB, 0)] : ['-', '-']);

function table(head: string[], rows: string[][]): string {
  // A '|' inside a cell (error messages, |Δp|) would split it into two columns.
  const cell = (c: string) => c.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [`| ${head.map(cell).join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

export function toMarkdown(r: BenchReport): string {
  const out: string[] = [];
  const gpu = r.host.gpu && 'name' in r.host.gpu ? `${r.host.gpu.name}, driver ${r.host.gpu.driver}, ${r.host.gpu.memoryTotalMiB} MiB` : (r.host.gpu?.error ?? 'none');
  out.push(`# GPU benchmark (${r.quick ? 'quick' : 'full'}, provider ${r.provider}, device ${r.deviceId})`);
  out.push('');
  out.push(`- started ${r.startedAt}, ${f(r.wallSeconds, 0)} s; node ${r.host.node}, onnxruntime-node ${r.host.ort}; CPU ${r.host.cpu} x ${r.host.cores}; load average ${r.host.loadAverage.map((x) => x.toFixed(1)).join(' ')}`);
  out.push(`- GPU: ${gpu}; utilisation sampling: ${r.gpuSampling}`);
  out.push(`- UNet depth ${r.model.depth}, base ${r.model.baseChannels}, ${r.model.upsample} upsampling, ${r.model.parameters} trainable parameters`);
  out.push('');

  out.push('## Targets');
  out.push(table(['target', 'value', 'wanted', 'result'], r.targets.map((t) => [t.name, t.value !== 0 && Math.abs(t.value) < 0.01 ? t.value.toExponential(2) : f(t.value, 3), t.target, t.pass ? 'PASS' : 'FAIL'])));
  out.push('');

  out.push('## Session creation');
  out.push(table(['provider', 'size', 'ok', 'ms', 'error'], r.sessionCreation.map((s) => [s.provider, `${s.size}²`, s.ok ? 'yes' : 'NO', f(s.createMs, 0), s.error ?? ''])));
  out.push('');

  if (r.placement.length) {
    out.push('## Node placement (ORT profile)');
    const rows: string[][] = [];
    for (const p of r.placement) {
      if ('error' in p) rows.push([p.graph, '-', '-', '-', p.error]);
      else for (const s of p.shares) rows.push([p.graph, s.provider, String(s.nodes), f(s.kernelMs, 2), s.ops.join(', ')]);
    }
    out.push(table(['graph', 'provider', 'nodes', 'kernel ms', 'op types'], rows));
    out.push('');
  }

  out.push('## Correctness (same synthetic DICOMs; reference = CPU)');
  out.push(
    table(
      ['size', 'images', 'provider', 'max |Δp|', 'mean |Δp|', 'mask pixels', 'differing', 'unexplained', 'result'],
      r.correctness.map((c) => [`${c.size}²`, String(c.images), c.provider, c.maxProbDiff.toExponential(2), c.meanProbDiff.toExponential(2), String(c.maskPixels), String(c.maskPixelsDiffering), String(c.unexplained), (c.pass ? 'PASS' : 'FAIL') + (c.note ? ` (${c.note})` : '')]),
    ),
  );
  out.push('');

  if (r.fallback) {
    const fb = r.fallback;
    out.push('## CUDA -> CPU fallback (Engine asked for a device that does not exist)');
    out.push(table(['device id', 'served on', 'segment ok', 'warning', 'result'], [[String(fb.requestedDeviceId), fb.served, fb.segmentOk ? 'yes' : 'no', fb.warning + (fb.error ? `; error: ${fb.error}` : ''), fb.pass ? 'PASS' : 'FAIL']]));
    out.push('');
  }

  out.push('## First run of each batch shape (cold start per shape)');
  out.push(table(['size', 'batch', 'first run ms', 'second run ms'], r.shapeCosts.map((s) => [`${s.size}²`, String(s.batch), f(s.firstRunMs, 1), f(s.secondRunMs, 1)])));
  out.push('');

  out.push('## Raw onnxruntime session (main thread, CPU tensors in and out)');
  out.push(table(['provider', 'size', 'batch', 'images/s', 'ms/batch p50', 'p90', 'runs', 'GPU util % mean / max', 'GPU MiB'], r.raw.map((x) => [x.provider, `${x.size}²`, String(x.batch), f(x.imagesPerSec), f(x.msPerBatchMedian, 2), f(x.msPerBatchP90, 2), String(x.runs), ...gpuCols(x.gpu)])));
  out.push('');

  if (r.threads?.length) {
    out.push('## Raw sessions in worker threads (no engine: N plain sessions, one per thread, batches back to back)');
    out.push(
      table(
        ['provider', 'size', 'sessions', 'batch', 'images/s', 'ms/batch p50 / p99', 'GPU util % mean / max', 'GPU MiB', 'error'],
        r.threads.map((x) => [x.provider, `${x.size}²`, String(x.sessions), String(x.batch), f(x.imagesPerSec), `${f(x.p50Ms, 2)} / ${f(x.p99Ms, 2)}`, ...gpuCols(x.gpu), x.error ?? '']),
      ),
    );
    out.push('');
  }

  out.push('## Service path: Engine.segment end to end (decode, preprocess, dynamic batching, infer, postprocess)');
  out.push(
    table(
      ['requested', 'served', 'size', 'workers x threads (+ prepare)', 'maxBatch', 'in flight', 'images/s', 'mean batch', 'p50 ms', 'p95 ms', 'decode / pre / queue / infer / post ms', 'infer p50 / p95 ms', 'start ms', 'GPU util % mean / max', 'GPU MiB'],
      r.engine.map((e) => [
        e.requested,
        e.served,
        e.inputSize === e.size ? `${e.size}²` : `${e.size}² (sent ${e.inputSize}² JPEG)`,
        `${e.workers} x ${e.intraOpThreads}${e.prepareWorkers ? ` + ${e.prepareWorkers} prepare` : ''}`,
        String(e.maxBatch),
        String(e.inFlight),
        f(e.imagesPerSec),
        f(e.meanBatch, 2),
        f(e.p50Ms, 0),
        f(e.p95Ms, 0),
        [e.stagesMs.decode, e.stagesMs.preprocess, e.stagesMs.queue, e.stagesMs.inference, e.stagesMs.postprocess].map((v) => f(v, 1)).join(' / '),
        e.inferP50Ms === undefined ? '-' : `${f(e.inferP50Ms, 1)} / ${f(e.inferP95Ms, 1)}`,
        f(e.startMs, 0),
        ...gpuCols(e.gpu),
      ]),
    ),
  );
  out.push('');

  out.push('## Training step (trainer/session, one ORT run per step)');
  out.push(
    table(
      ['requested', 'runs on', 'size', 'batch', 'steps', 'median ms', 'mean ms', 'p90 ms', 'images/s', 'first step ms', 'create ms', 'loss first -> last', 'GPU util % mean / max', 'GPU MiB', 'note'],
      r.training.map((t) => [
        t.requested,
        t.executionProvider,
        `${t.size}²`,
        String(t.batch),
        String(t.steps),
        f(t.stepMsMedian, 1),
        f(t.stepMsMean, 1),
        f(t.stepMsP90, 1),
        f(t.imagesPerSec, 1),
        f(t.firstStepMs, 0),
        f(t.createMs, 0),
        `${f(t.lossFirst, 4)} -> ${f(t.lossLast, 4)}`,
        ...gpuCols(t.gpu),
        t.error ?? t.fallbackWarning ?? '',
      ]),
    ),
  );
  out.push('');

  const t = r.torch;
  out.push('## PyTorch eager, same architecture');
  if (!t || !t.ok) out.push(`not run: ${t?.error ?? 'skipped'}`);
  else {
    out.push(`torch ${t.torch}, CUDA ${t.cuda ?? '-'}, cuDNN ${t.cudnn ?? '-'}, ${t.gpu ?? 'cpu'}; cudnn.benchmark ${t.cudnnBenchmark}, TF32 conv ${t.tf32?.conv} / matmul ${t.tf32?.matmul}; ${t.params} parameters (${t.paramsMatch ? 'equal to ours' : 'DIFFERENT from ours'}); ${f((t.wallMs ?? 0) / 1000, 0)} s`);
    out.push('');
    out.push(table(['size', 'batch', 'io', 'images/s', 'ms/batch p50', 'first run ms'], (t.inference ?? []).map((x) => [`${x.size}²`, String(x.batch), x.io, f(x.imagesPerSec), f(x.msPerBatchMedian, 2), f(x.firstRunMs, 0)])));
    if (t.train) {
      out.push('');
      out.push(`training step ${t.train.size}² batch ${t.train.batch}: median ${f(t.train.stepMsMedian, 2)} ms, mean ${f(t.train.stepMsMean, 2)} ms over ${t.train.steps} steps (first ${f(t.train.firstStepMs, 0)} ms), loss ${f(t.train.lossFirst, 4)} -> ${f(t.train.lossLast, 4)}`);
    }
  }
  out.push('');

  if (r.skipped.length || r.notes.length) {
    out.push('## Notes');
    for (const s of r.skipped) out.push(`- skipped: ${s}`);
    for (const n of r.notes) out.push(`- ${n}`);
    out.push('');
  }
  return out.join('\n');
}
