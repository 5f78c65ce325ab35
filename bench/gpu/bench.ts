/**
 * The GPU proof and benchmark in one run: CUDA session creation, node placement, correctness against
 * CPU, the CUDA -> CPU fallback, raw onnxruntime throughput, the service path (Engine) under load,
 * the trainer's step, PyTorch eager on the same architecture, the CPU path for reference, and
 * nvidia-smi utilisation during each measurement. Writes report.md and report.json.
 *
 *   node --import tsx bench/gpu/bench.ts [--provider cuda|cpu] [--device-id 0] [--quick] [--out DIR]
 *        [--sizes 256,512] [--batches 1,8,32] [--seconds 3] [--max-batch 8] [--engine-workers 1,2,4,8,4+0] [--radiograph 1024] [--thread-sessions 1,2,4,8]
 *        [--in-flight 64] [--train-steps 250] [--skip torch,cpu,...] [--budget-s 520] [--python python3]
 *
 * bench/gpu/README.md is the procedure on the GPU machine; `--provider cpu --quick` is the dry run
 * (every section runs, on CPU, in small sizes).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import type { ModelManifest } from '../../core/manifest.ts';
import { chestDicom } from '../../synth/index.ts';
import { makeModelRepository } from '../../test/helpers/model-fixture.ts';
import { DEFAULTS } from '../../trainer/config.ts';
import { countTrainable, type UpsampleMode } from '../../trainer/model/unet.ts';
import { compareMasks, maxAbsDiff, prepareImages, probabilities, referenceMasks, type PreparedImage } from './correctness.ts';
import { fallbackCheck, measureEngine, parseWorkerSpec, segmentAll, startEngine, type EngineOptions } from './engine-runs.ts';
import { GpuMonitor, gpuInfo, type GpuUsage } from './gpu-monitor.ts';
import { cudaProviderDiagnosis, inferencePlacement, openRaw, rawThroughput, shapeCosts, type BenchProvider } from './inference.ts';
import { epochNow, oneLine } from './measure.ts';
import { toMarkdown, type BenchReport, type TorchResult } from './report.ts';
import { sessionsInThreads } from './threads.ts';
import { timeTraining, trainingBatch, trainingPlacement, type TrainingOptions } from './training.ts';

const SECTIONS = ['placement', 'shapes', 'raw', 'threads', 'correctness', 'engine', 'fallback', 'train', 'torch', 'cpu'] as const;
type Section = (typeof SECTIONS)[number];

const { values: a } = parseArgs({
  options: {
    provider: { type: 'string', default: 'cuda' },
    'device-id': { type: 'string', default: '0' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    sizes: { type: 'string' },
    batches: { type: 'string' },
    seconds: { type: 'string' },
    'max-batch': { type: 'string' },
    'engine-workers': { type: 'string' },
    'thread-sessions': { type: 'string' },
    radiograph: { type: 'string' },
    'in-flight': { type: 'string' },
    'max-delay-ms': { type: 'string', default: '2' },
    images: { type: 'string' },
    'prob-tol': { type: 'string', default: '1e-2' },
    'bad-device-id': { type: 'string', default: '63' },
    'train-size': { type: 'string' },
    'train-batch': { type: 'string' },
    'train-steps': { type: 'string' },
    'cpu-train-steps': { type: 'string' },
    'train-seconds': { type: 'string' },
    depth: { type: 'string', default: String(DEFAULTS.depth) },
    base: { type: 'string', default: String(DEFAULTS.baseChannels) },
    upsample: { type: 'string', default: DEFAULTS.upsample },
    python: { type: 'string', default: process.env.PYTHON ?? 'python3' },
    skip: { type: 'string', default: '' },
    'budget-s': { type: 'string', default: '520' },
  },
});

const quick = a.quick!;
const provider = a.provider as BenchProvider;
if (provider !== 'cuda' && provider !== 'cpu') throw new Error(`--provider must be cuda or cpu, got ${a.provider}`);
const nums = (s: string | undefined, full: string, q: string) => (s ?? (quick ? q : full)).split(',').map(Number);
const num = (s: string | undefined, full: number, q: number) => Number(s ?? (quick ? q : full));
const cfg = {
  deviceId: Number(a['device-id']),
  sizes: nums(a.sizes, '256,512', '64,128'),
  batches: nums(a.batches, '1,8,32', '1,4'),
  seconds: num(a.seconds, 3, 0.3),
  maxBatch: num(a['max-batch'], 8, 4),
  engineWorkers: (a['engine-workers'] ?? (quick ? '1' : '1,2,4,8,4+0')).split(',').map(parseWorkerSpec),
  radiograph: num(a.radiograph, 1024, 256),
  threadSessions: nums(a['thread-sessions'], '1,2,4,8', '1,2'),
  inFlight: num(a['in-flight'], 64, 8),
  maxDelayMs: Number(a['max-delay-ms']),
  images: num(a.images, 4, 2),
  probTol: Number(a['prob-tol']),
  badDeviceId: Number(a['bad-device-id']),
  trainSize: num(a['train-size'], DEFAULTS.imageSize, 64),
  trainBatch: num(a['train-batch'], DEFAULTS.batchSize, 2),
  trainSteps: num(a['train-steps'], 250, 3),
  cpuTrainSteps: num(a['cpu-train-steps'], 3, 1),
  trainSeconds: num(a['train-seconds'], 60, 10),
  unet: { depth: Number(a.depth), baseChannels: Number(a.base), inChannels: 1, classes: 1, upsample: a.upsample as UpsampleMode },
  budgetS: Number(a['budget-s']),
  skip: new Set(a.skip!.split(',').filter(Boolean)),
};
for (const s of cfg.skip) if (!SECTIONS.includes(s as Section)) throw new Error(`--skip: unknown section ${s} (sections: ${SECTIONS.join(', ')})`);
const outDir = resolve(a.out ?? process.env.OUT ?? 'tmp/gpu-bench');
const here = fileURLToPath(new URL('.', import.meta.url));

const t0 = performance.now();
const elapsedS = () => (performance.now() - t0) / 1000;
const log = (msg: string) => console.log(`[${elapsedS().toFixed(0).padStart(4)} s] ${msg}`);

const report: BenchReport = {
  startedAt: new Date().toISOString(),
  wallSeconds: 0,
  quick,
  provider,
  deviceId: cfg.deviceId,
  host: { node: process.version, ort: ort.env.versions?.node ?? ort.env.versions?.common ?? '?', cpu: cpus()[0]?.model ?? '?', cores: availableParallelism(), loadAverage: loadavg() },
  model: { depth: cfg.unet.depth, baseChannels: cfg.unet.baseChannels, upsample: cfg.unet.upsample, parameters: countTrainable(cfg.unet) },
  gpuSampling: '',
  sessionCreation: [],
  placement: [],
  shapeCosts: [],
  raw: [],
  threads: [],
  correctness: [],
  engine: [],
  training: [],
  targets: [],
  skipped: [],
  notes: [],
};
if (process.env.LD_LIBRARY_PATH) report.host.ldLibraryPath = process.env.LD_LIBRARY_PATH;

function allowed(section: Section, what: string): boolean {
  if (cfg.skip.has(section)) {
    report.skipped.push(`${what} (--skip ${section})`);
    return false;
  }
  if (elapsedS() > cfg.budgetS) {
    report.skipped.push(`${what} (time budget of ${cfg.budgetS} s used up at ${elapsedS().toFixed(0)} s)`);
    return false;
  }
  return true;
}

/** GPU usage is attached after the monitor stops (samples may arrive late); phases remember their window. */
const phases: Array<{ target: { gpu?: GpuUsage }; from: number; to: number }> = [];
async function phase<T extends object>(fn: () => Promise<T>): Promise<T & { gpu?: GpuUsage }> {
  const from = epochNow();
  const r = (await fn()) as T & { gpu?: GpuUsage };
  phases.push({ target: r, from, to: epochNow() });
  return r;
}

/**
 * Write report.json and report.md. Called after every section too, so a run cut off by the device
 * tool's time limit still leaves what it measured in the output folder.
 */
async function save(final: boolean): Promise<string> {
  for (const p of phases) {
    const u = monitor.usage(p.from, p.to);
    if (u) p.target.gpu = u;
  }
  report.gpuSampling = monitor.unavailable ?? `${monitor.samples.length} nvidia-smi samples${final ? '' : ' so far'}`;
  report.targets = targets(report);
  report.wallSeconds = elapsedS();
  report.host.loadAverage = loadavg();
  const md = toMarkdown(report) + (final ? '' : '\n(partial: the run has not finished)\n');
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'report.json'), JSON.stringify({ ...report, partial: !final }, null, 2));
  await writeFile(join(outDir, 'report.md'), md);
  return md;
}

const monitor = GpuMonitor.start(cfg.deviceId);
report.host.gpu = await gpuInfo(cfg.deviceId);
const work = await mkdtemp(join(tmpdir(), 'gpu-bench-'));
let cudaOk = provider === 'cpu';

try {
  log(`provider ${provider}, device ${cfg.deviceId}, ${quick ? 'quick' : 'full'}; ORT ${report.host.ort}; GPU ${JSON.stringify(report.host.gpu)}`);

  // One repository per size, so each Engine loads (and warms up) only the model it is measured on.
  const models = new Map<number, { repo: string; name: string; onnxPath: string; manifest: ModelManifest }>();
  const dicoms = new Map<number, { refs: Uint8Array[]; load: Uint8Array }>();
  for (const size of cfg.sizes) {
    const repo = join(work, `repo${size}`);
    const [e] = await makeModelRepository(repo, [{ name: `unet${size}`, version: '1', size, ...cfg.unet, seed: 1 }]);
    models.set(size, { repo, name: e!.name, onnxPath: e!.onnxPath, manifest: e!.manifest });
    const refs = await Promise.all(Array.from({ length: cfg.images }, async (_, i) => (await chestDicom(10 + i, { size, lesions: 1 })).bytes));
    dicoms.set(size, { refs, load: (await chestDicom(500, { size, lesions: 1 })).bytes });
  }

  // ---------------------------------------------------------------- raw sessions on the provider
  const providerProbs = new Map<number, { images: PreparedImage[]; probs: Float32Array[] }>();
  for (const size of cfg.sizes) {
    const m = models.get(size)!;
    const opened = await openRaw(m.onnxPath, provider, cfg.deviceId);
    report.sessionCreation.push({ provider, size, ok: !!opened.session, createMs: opened.createMs, ...(opened.error ? { error: opened.error } : {}) });
    log(`session ${provider} ${size}²: ${opened.session ? `created in ${opened.createMs.toFixed(0)} ms` : `FAILED: ${opened.error}`}`);
    if (!opened.session) continue;
    cudaOk = true;
    const s = opened.session;
    try {
      if (allowed('shapes', `first-run cost per batch shape at ${size}²`)) {
        const batches = [...Array.from({ length: cfg.maxBatch }, (_, i) => i + 1), ...cfg.batches];
        const costs = await shapeCosts(s, m.manifest.input.name, 1, size, batches);
        report.shapeCosts.push(...costs);
        log(`first runs ${size}²: ${costs.map((c) => `b${c.batch} ${c.firstRunMs.toFixed(0)}/${c.secondRunMs.toFixed(0)} ms`).join(', ')}`);
      }
      if (allowed('raw', `raw ${provider} throughput at ${size}²`)) {
        for (const b of cfg.batches) {
          const r = await phase(() => rawThroughput(s, provider, m.manifest.input.name, 1, size, b, cfg.seconds));
          report.raw.push(r);
          log(`raw ${provider} ${size}² b${b}: ${r.imagesPerSec.toFixed(1)} img/s (${r.msPerBatchMedian.toFixed(2)} ms/batch)`);
        }
      }
      if (size === cfg.sizes[0] && allowed('threads', `raw ${provider} sessions in worker threads at ${size}²`)) {
        for (const n of cfg.threadSessions) {
          const r = await phase(() => sessionsInThreads(m.onnxPath, m.manifest.input.name, provider, cfg.deviceId, size, cfg.maxBatch, n, cfg.seconds));
          report.threads!.push(r);
          log(`raw ${provider} ${size}² b${cfg.maxBatch}, ${n} session(s) in threads: ${r.error ? `FAILED: ${r.error}` : `${r.imagesPerSec.toFixed(1)} img/s, run p50 ${r.p50Ms.toFixed(2)} ms`}`);
        }
      }
      if (allowed('correctness', `${provider} probabilities at ${size}²`)) {
        const images = await prepareImages(dicoms.get(size)!.refs, m.manifest);
        providerProbs.set(size, { images, probs: await probabilities(s, m.manifest, images) });
      }
    } finally {
      await s.release();
    }
  }
  if (!cudaOk) {
    report.notes.push(`no ${provider} session could be created (see Session creation): the ${provider} sections were skipped; CPU sections still ran`);
    report.notes.push(await cudaProviderDiagnosis());
  }

  if (cudaOk && allowed('placement', 'inference graph node placement')) {
    const size = cfg.sizes[0]!;
    const m = models.get(size)!;
    try {
      report.placement.push({ graph: `inference ${size}²`, shares: await inferencePlacement(m.onnxPath, provider, cfg.deviceId, m.manifest.input.name, 1, size) });
    } catch (e) {
      report.placement.push({ graph: `inference ${size}²`, error: oneLine(e) });
    }
  }

  await save(false);

  // ---------------------------------------------------------------- correctness + service path
  for (const size of cfg.sizes) {
    if (!cudaOk) break;
    const m = models.get(size)!;
    const d = dicoms.get(size)!;
    const pp = providerProbs.get(size);
    let served: Uint8Array[] | undefined;
    for (const [i, { workers, prepareWorkers }] of cfg.engineWorkers.entries()) {
      const wantCorrectness = i === 0 && pp !== undefined;
      if (!wantCorrectness && !allowed('engine', `Engine ${provider} ${size}² with ${workers} workers`)) continue;
      const o: EngineOptions = { repo: m.repo, provider, deviceId: cfg.deviceId, workers, maxBatch: cfg.maxBatch, inFlight: cfg.inFlight, maxDelayMs: cfg.maxDelayMs, ...(prepareWorkers === undefined ? {} : { prepareWorkers }) };
      const h = await startEngine(o);
      try {
        const servedOn = h.engine.model(m.name)?.executionProvider;
        if (servedOn !== provider) {
          report.notes.push(`Engine ${size}² (${workers} workers) serves on ${servedOn} instead of ${provider}: ${h.logs.join(' ').slice(0, 400)}`);
          continue;
        }
        if (wantCorrectness) served = await segmentAll(h, m.name, d.refs);
        if (cfg.skip.has('engine') || elapsedS() > cfg.budgetS) continue;
        const r = await phase(() => measureEngine(h, o, m.name, size, d.load, cfg.seconds + 1, quick ? 0.3 : 2));
        report.engine.push(r);
        log(`engine ${provider} ${size}² ${workers}+${r.prepareWorkers} workers: ${r.imagesPerSec.toFixed(1)} img/s, mean batch ${r.meanBatch.toFixed(2)}, p50 ${r.p50Ms.toFixed(0)} ms`);
      } finally {
        await h.engine.close();
      }
    }
    // The product's real input: a radiograph larger than the model, JPEG-decoded and resized on the CPU
    // (issue 11). The engine's automatic plan (workers 0) is what `npm start` runs on this machine.
    if (size === cfg.sizes[0] && cfg.radiograph > size && allowed('engine', `Engine ${provider} ${size}² fed ${cfg.radiograph}² radiographs`)) {
      const o: EngineOptions = { repo: m.repo, provider, deviceId: cfg.deviceId, workers: 0, maxBatch: cfg.maxBatch, inFlight: cfg.inFlight, maxDelayMs: cfg.maxDelayMs };
      const big = (await chestDicom(501, { size: cfg.radiograph, lesions: 1 })).bytes;
      const h = await startEngine(o);
      try {
        const r = await phase(() => measureEngine(h, o, m.name, size, big, cfg.seconds + 1, quick ? 0.3 : 2, cfg.radiograph));
        report.engine.push(r);
        log(`engine ${provider} ${size}² fed ${cfg.radiograph}²: ${r.imagesPerSec.toFixed(1)} img/s, mean batch ${r.meanBatch.toFixed(2)}, p50 ${r.p50Ms.toFixed(0)} ms`);
      } finally {
        await h.engine.close();
      }
    }
    if (pp && served) {
      const cpu = await openRaw(m.onnxPath, 'cpu', cfg.deviceId);
      if (!cpu.session) throw new Error(`CPU session failed: ${cpu.error}`);
      const refProbs = await probabilities(cpu.session, m.manifest, pp.images);
      await cpu.session.release();
      const diff = maxAbsDiff(pp.probs, refProbs);
      const refMasks = await referenceMasks(refProbs, pp.images, m.manifest);
      const cmp = compareMasks(served, refMasks, refProbs, pp.images, m.manifest, diff.max);
      const pass = diff.max <= cfg.probTol && cmp.unexplained === 0;
      report.correctness.push({
        size,
        images: pp.images.length,
        provider,
        maxProbDiff: diff.max,
        meanProbDiff: diff.mean,
        maskPixels: cmp.pixels,
        maskPixelsDiffering: cmp.differing,
        unexplained: cmp.unexplained,
        pass,
        ...(provider === 'cpu' ? { note: 'dry run: CPU against CPU' } : diff.max > cfg.probTol ? { note: `max |Δp| above ${cfg.probTol}` } : {}),
      });
      log(`correctness ${size}²: max |Δp| ${diff.max.toExponential(2)}, ${cmp.differing} mask pixels differ (${cmp.unexplained} unexplained)`);
    }
  }

  await save(false);

  // ---------------------------------------------------------------- trainer
  const trainOpts = (p: BenchProvider, steps: number): TrainingOptions => ({
    provider: p,
    deviceId: cfg.deviceId,
    unet: cfg.unet,
    loss: DEFAULTS.loss,
    lr: DEFAULTS.lr,
    size: cfg.trainSize,
    batch: cfg.trainBatch,
    steps,
    maxSeconds: cfg.trainSeconds,
  });
  const data = await trainingBatch(cfg.trainSize, cfg.trainBatch);
  if (cudaOk && allowed('train', `trainer ${provider} steps`)) {
    const r = await phase(() => timeTraining(trainOpts(provider, cfg.trainSteps), data));
    report.training.push(r);
    log(`train ${provider}: runs on ${r.executionProvider}, median ${r.stepMsMedian.toFixed(1)} ms/step over ${r.steps} steps (first ${r.firstStepMs.toFixed(0)} ms)`);
    if (allowed('placement', 'training graph node placement')) {
      try {
        report.placement.push({ graph: `training step ${cfg.trainSize}² batch ${cfg.trainBatch}`, shares: await trainingPlacement(trainOpts(provider, 2), data) });
      } catch (e) {
        report.placement.push({ graph: 'training step', error: oneLine(e) });
      }
    }
  }

  await save(false);

  // ---------------------------------------------------------------- PyTorch eager
  if (allowed('torch', 'PyTorch eager reference')) {
    report.torch = await runTorch(provider, Math.max(60, cfg.budgetS - elapsedS()));
    log(`torch: ${report.torch.ok ? `${report.torch.inference?.length} inference rows, train ${report.torch.train?.stepMsMedian?.toFixed(1)} ms/step` : report.torch.error}`);
  }

  await save(false);

  // ---------------------------------------------------------------- fallback
  if (allowed('fallback', 'CUDA -> CPU fallback')) {
    const size = cfg.sizes[0]!;
    const m = models.get(size)!;
    report.fallback = await fallbackCheck(m.repo, m.name, dicoms.get(size)!.load, cfg.badDeviceId);
    log(`fallback: served on ${report.fallback.served}; ${report.fallback.warning}`);
  }

  await save(false);

  // ---------------------------------------------------------------- CPU reference
  if (provider === 'cuda' && allowed('cpu', 'CPU reference rows')) {
    for (const size of cfg.sizes) {
      const m = models.get(size)!;
      const opened = await openRaw(m.onnxPath, 'cpu', cfg.deviceId);
      report.sessionCreation.push({ provider: 'cpu', size, ok: !!opened.session, createMs: opened.createMs, ...(opened.error ? { error: opened.error } : {}) });
      if (!opened.session) continue;
      try {
        for (const b of cfg.batches.filter((x) => x <= cfg.maxBatch)) {
          if (elapsedS() > cfg.budgetS) break;
          const r = await rawThroughput(opened.session, 'cpu', m.manifest.input.name, 1, size, b, cfg.seconds);
          report.raw.push(r);
          log(`raw cpu ${size}² b${b}: ${r.imagesPerSec.toFixed(1)} img/s`);
        }
      } finally {
        await opened.session.release();
      }
    }
    if (elapsedS() <= cfg.budgetS) {
      const size = cfg.sizes[0]!;
      const m = models.get(size)!;
      const o: EngineOptions = { repo: m.repo, provider: 'cpu', deviceId: cfg.deviceId, workers: Math.min(4, Math.max(1, Math.floor(availableParallelism() / 4))), maxBatch: cfg.maxBatch, inFlight: cfg.inFlight, maxDelayMs: cfg.maxDelayMs };
      const h = await startEngine(o);
      try {
        const r = await measureEngine(h, o, m.name, size, dicoms.get(size)!.load, cfg.seconds + 1, 1);
        report.engine.push(r);
        log(`engine cpu ${size}²: ${r.imagesPerSec.toFixed(1)} img/s`);
      } finally {
        await h.engine.close();
      }
    }
    if (elapsedS() <= cfg.budgetS) {
      const r = await timeTraining(trainOpts('cpu', cfg.cpuTrainSteps), data);
      report.training.push(r);
      log(`train cpu: median ${r.stepMsMedian.toFixed(0)} ms/step`);
    }
  }
} catch (e) {
  report.notes.push(`benchmark aborted: ${(e as Error).stack ?? oneLine(e)}`);
  process.exitCode = 1;
} finally {
  await monitor.stop();
  await rm(work, { recursive: true, force: true });
  const md = await save(true);
  console.log('\n' + md);
  console.log(`written: ${join(outDir, 'report.md')} and report.json`);
}

/** PyTorch eager on the same device and architecture (bench/gpu/torch_unet.py), its JSON line parsed. */
function runTorch(p: BenchProvider, timeoutS: number): Promise<TorchResult> {
  const args = [
    join(here, 'torch_unet.py'),
    '--device', p,
    '--device-id', String(cfg.deviceId),
    '--depth', String(cfg.unet.depth),
    '--base', String(cfg.unet.baseChannels),
    '--upsample', cfg.unet.upsample,
    '--sizes', cfg.sizes.join(','),
    '--batches', cfg.batches.join(','),
    '--seconds', String(cfg.seconds),
    '--train-size', String(cfg.trainSize),
    '--train-batch', String(cfg.trainBatch),
    '--train-steps', String(cfg.trainSteps),
    '--lr', String(DEFAULTS.lr),
    '--loss', `${DEFAULTS.loss.bce},${DEFAULTS.loss.dice},${DEFAULTS.loss.focal}`,
    '--expect-params', String(countTrainable(cfg.unet)),
  ];
  const started = performance.now();
  return new Promise((resolvePromise) => {
    const child = spawn(a.python!, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolvePromise({ ok: false, error: `${a.python} could not be started: ${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('TORCH_JSON '));
      if (!line) return resolvePromise({ ok: false, error: `torch_unet.py ended (${signal ?? code}) without a result${signal ? ` (time limit ${timeoutS.toFixed(0)} s)` : ''}` });
      const r = JSON.parse(line.slice('TORCH_JSON '.length)) as TorchResult;
      r.wallMs = performance.now() - started;
      resolvePromise(r);
    });
  });
}

function targets(r: BenchReport): BenchReport['targets'] {
  const out: BenchReport['targets'] = [];
  for (const size of cfg.sizes) {
    const raw = r.raw.find((x) => x.provider === provider && x.size === size && x.batch === cfg.maxBatch);
    const eng = r.engine.filter((e) => e.requested === provider && e.served === provider && e.size === size && e.inputSize === size && e.maxBatch === cfg.maxBatch);
    if (raw && eng.length) {
      const best = eng.reduce((x, y) => (y.imagesPerSec > x.imagesPerSec ? y : x));
      const v = best.imagesPerSec / raw.imagesPerSec;
      out.push({ name: `${size}²: service (best of ${eng.map((e) => e.workers).join('/')} workers, maxBatch ${cfg.maxBatch}) / raw ORT ${provider} batch ${cfg.maxBatch}`, value: v, target: '>= 0.9', pass: v >= 0.9 });
    }
  }
  const t = r.torch;
  if (t?.ok) {
    for (const x of r.raw.filter((x) => x.provider === provider)) {
      const y = t.inference?.find((i) => i.size === x.size && i.batch === x.batch && i.io === 'cpu');
      if (!y) continue;
      const v = x.imagesPerSec / y.imagesPerSec;
      out.push({ name: `${x.size}² batch ${x.batch}: raw ORT ${provider} / PyTorch eager (both with CPU tensors in and out)`, value: v, target: '>= 1.0', pass: v >= 1 });
    }
    const ours = r.training.find((x) => x.requested === provider && x.executionProvider === provider);
    if (ours && t.train) {
      const v = t.train.stepMsMedian / ours.stepMsMedian;
      out.push({ name: `training step ${ours.size}² batch ${ours.batch}: PyTorch ms / trainer ms`, value: v, target: '>= 1.0', pass: v >= 1 });
    }
    if (t.params !== undefined) out.push({ name: `parameters: PyTorch ${t.params} vs ours ${r.model.parameters} (difference)`, value: t.params - r.model.parameters, target: '= 0', pass: t.params === r.model.parameters });
  }
  for (const c of r.correctness) out.push({ name: `${c.size}² correctness: max |Δp| (mask pixels unexplained: ${c.unexplained})`, value: c.maxProbDiff, target: `<= ${cfg.probTol}, 0 unexplained`, pass: c.pass });
  if (r.fallback) out.push({ name: `fallback: cuda device ${r.fallback.requestedDeviceId} -> served on ${r.fallback.served} with a warning (1 = yes)`, value: r.fallback.pass ? 1 : 0, target: '= 1', pass: r.fallback.pass });
  const tr = r.training.find((x) => x.requested === provider);
  if (tr) out.push({ name: `trainer runs on the requested provider (${provider}) (1 = yes)`, value: tr.executionProvider === provider ? 1 : 0, target: '= 1', pass: tr.executionProvider === provider });
  return out;
}
