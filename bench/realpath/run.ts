/**
 * The real path, side by side in one run (issue 11, item 1): for each input kind, the same UNet
 * served by
 *   - raw onnxruntime-node: plain sessions, each in its own worker thread, batch 8, no decode and no
 *     HTTP: the best of a few thread plans (sessions x intra-op threads = cores), tried first;
 *   - our service at its defaults (`node services/main.ts`, only the model repository, port and host set);
 *   - our service with an alternative setting (`--alt "WORKERS=2 INTRA_OP_THREADS=1"`, env overrides);
 *   - a FastAPI + PyTorch service with the same weights (bench/realpath/fastapi_service.py),
 * under 8 closed-loop clients from a separate process (load.ts), `--duration` seconds per row.
 * Per row: images/s, p50/p99 latency, CPU ms per image (the server's process tree between the
 * window's two instants, divided by the answers completed in it), per-stage wall ms per image (our
 * /metrics histograms; the Python service's /stats), peak RSS; then ratios ours/FastAPI, ours/raw.
 *
 *   bash scripts/bench-deps.sh        # once: Debian's python3-torch, -fastapi, ... (bench only)
 *   node --import tsx bench/realpath/run.ts [--quick] [--duration 20] [--clients 8]
 *       [--inputs cxr1024,mr512,cxr256] [--alt "WORKERS=2 INTRA_OP_THREADS=1"] [--alt-root DIR] [--no-python]
 *       [--py-workers 1] [--py-handler threadpool|serial] [--depth 4] [--base 16]
 *       [--upsample nearest] [--foreground 0.03] [--model-size 256] [--resize area] [--out results.json]
 *
 * Inputs (synthetic, seeded; 4 different images per kind, sent round-robin):
 *   cxr1024: 1024x1024 8-bit MONOCHROME2 chest phantom, JPEG Baseline (synth's chestDicom, sharp/libjpeg-turbo q95)
 *   mr512:   512x512 16-bit (12 bits stored) brain phantom, explicit VR little endian
 *   cxr256:  256x256 8-bit chest phantom, JPEG Baseline (the model's size: no resize either way)
 * `--resize area`: one more row per input, our service at its defaults serving the same weights under
 * a manifest that pins `area` instead of `bilinear` (model `unet-area`, `?model=unet-area`).
 * Model: random-weight UNet (the test fixture's He init, seed 1), 256x256, depth 4, base 16,
 * nearest up-sampling: what bench/service-load.ts builds for issue 11's table, except that the
 * head's bias is shifted so ~3 % of a chest phantom comes out foreground (see buildModel).
 */
import { spawn, fork, execFileSync, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync, readdirSync, writeFileSync, closeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { newUid, writeDicom } from '../../core/dicom/write.ts';
import { ResizeMethodSchema } from '../../core/preprocess/spec.ts';
import { brainPhantom, chestDicom, mulberry32 } from '../../synth/index.ts';
import { fixtureManifest } from '../../test/helpers/model-fixture.ts';
import { buildInferenceOnnx } from '../../trainer/model/inference-graph.ts';
import { initUNetParams, type UpsampleMode } from '../../trainer/model/unet.ts';
import { freePort } from '../../test/helpers/net.ts';
import { runRawProcess, type RawResult } from './raw-process.ts';

const { values: a } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    clients: { type: 'string', default: '8' },
    inputs: { type: 'string', default: 'cxr1024,mr512,cxr256' },
    alt: { type: 'string', default: 'WORKERS=2 INTRA_OP_THREADS=1' },
    // Another checkout (e.g. a git worktree of an older commit) whose service the alternative row runs: before/after in one run.
    'alt-root': { type: 'string' },
    'no-python': { type: 'boolean', default: false },
    'py-workers': { type: 'string', default: '1' },
    'py-handler': { type: 'string', default: 'threadpool' },
    depth: { type: 'string', default: '4' },
    base: { type: 'string', default: '16' },
    upsample: { type: 'string', default: 'nearest' },
    foreground: { type: 'string', default: '0.03' },
    'model-size': { type: 'string', default: '256' },
    // Further rows at the defaults whose model pins another resize method (same weights, model unet-<method>).
    resize: { type: 'string', default: '' },
    batch: { type: 'string', default: '8' },
    out: { type: 'string' },
  },
});

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HERE = fileURLToPath(new URL('./', import.meta.url));
const PYTHON = '/usr/bin/python3';
const duration = Number(a.duration ?? (a.quick ? 3 : 20));
const warmup = Number(a.warmup ?? (a.quick ? 2 : 4));
const clients = Number(a.clients);
const batch = Number(a.batch);
const modelSize = Number(a['model-size']);
const cores = availableParallelism();
const altEnv = Object.fromEntries(
  a.alt
    .split(/\s+/)
    .filter(Boolean)
    .map((kv) => {
      const i = kv.indexOf('=');
      if (i < 1) throw new Error(`--alt: expected KEY=VALUE, got ${kv}`);
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
);
const resizeRows = a.resize
  .split(',')
  .filter(Boolean)
  .map((m) => ResizeMethodSchema.parse(m))
  .filter((m) => m !== 'bilinear');
const KINDS = ['cxr1024', 'mr512', 'cxr256'] as const;
type Kind = (typeof KINDS)[number];
const inputs = a.inputs.split(',').map((s) => {
  if (!(KINDS as readonly string[]).includes(s)) throw new Error(`--inputs: unknown kind ${s} (${KINDS.join(', ')})`);
  return s as Kind;
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------- /proc readings: CPU seconds and RSS of a process and its descendants ----------

function treePids(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      /* exited meanwhile */
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]!) ?? []));
  return out;
}
function treeCpuSeconds(root: number): number {
  let sum = 0;
  for (const pid of treePids(root)) {
    try {
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      sum += (Number(f[11]) + Number(f[12])) / 100; // utime + stime, USER_HZ = 100
    } catch {
      /* exited */
    }
  }
  return sum;
}
function treeRssMiB(root: number): number {
  let kb = 0;
  for (const pid of treePids(root)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      kb += Number(m?.[1] ?? 0);
    } catch {
      /* exited */
    }
  }
  return kb / 1024;
}

// ---------- model, parity reference, inputs ----------

const dir = await mkdtemp(join(tmpdir(), 'bench-realpath-'));
const logs: string[] = [];
let current: ChildProcess | undefined;
const cleanup = () => current?.kill('SIGKILL');
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

const model = await buildModel();

/**
 * The fixture's random-weight UNet (test/helpers/model-fixture.ts: He init, seed 1), with the head's
 * bias shifted so that about `--foreground` of a chest phantom's pixels come out foreground: a
 * random net's logits are almost all positive, and an all-foreground mask would make
 * post-processing and RLE unrealistically cheap. `--foreground 0` keeps the fixture as it is
 * (what issue 11's table used).
 */
async function buildModel() {
  const cfg = { depth: Number(a.depth), baseChannels: Number(a.base), inChannels: 1, classes: 1, upsample: a.upsample as UpsampleMode };
  const weights = initUNetParams(cfg, 1);
  const fraction = Number(a.foreground);
  if (fraction > 0) {
    const px = (await chestDicom(1, { size: modelSize, lesions: 1 })).pixels;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of px) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    const x = Float32Array.from(px, (v) => (hi > lo ? (v - lo) / (hi - lo) : 0));
    const s = await ort.InferenceSession.create(buildInferenceOnnx(cfg, modelSize, modelSize, weights));
    const out = await s.run({ image: new ort.Tensor('float32', x, [1, 1, modelSize, modelSize]) });
    await s.release();
    const logits = Float32Array.from(out.logits!.data as Float32Array).sort();
    const q = logits[Math.floor(logits.length * (1 - fraction))]!;
    weights.get('head.bias')![0]! -= q;
  }
  const onnx = buildInferenceOnnx(cfg, modelSize, modelSize, weights);
  const manifest = fixtureManifest({ name: 'unet', version: '1', size: modelSize }, createHash('sha256').update(onnx).digest('hex'));
  const vdir = join(dir, 'models', 'unet', '1');
  await mkdir(vdir, { recursive: true });
  const onnxPath = join(vdir, 'model.onnx');
  await writeFile(onnxPath, onnx);
  await writeFile(join(vdir, 'model.json'), JSON.stringify(manifest, null, 2));
  for (const method of resizeRows) {
    const mdir = join(dir, 'models', `unet-${method}`, '1');
    await mkdir(mdir, { recursive: true });
    await writeFile(join(mdir, 'model.onnx'), onnx);
    const pinned = { ...manifest, name: `unet-${method}`, preprocessing: { ...manifest.preprocessing, resize: method } };
    await writeFile(join(mdir, 'model.json'), JSON.stringify(pinned, null, 2));
  }
  return { dir: vdir, onnxPath, manifest };
}

// ORT's logits on one seeded input: the FastAPI service checks its torch module against them at start.
{
  const rng = mulberry32(7);
  const x = new Float32Array(modelSize * modelSize).map(() => rng());
  const s = await ort.InferenceSession.create(model.onnxPath);
  const out = await s.run({ [model.manifest.input.name]: new ort.Tensor('float32', x, [1, 1, modelSize, modelSize]) });
  const logits = out[model.manifest.output.name]!.data as Float32Array;
  writeFileSync(join(dir, 'parity-input.bin'), Buffer.from(x.buffer));
  writeFileSync(join(dir, 'parity-logits.bin'), Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
  await s.release();
}

async function makeInput(kind: Kind, seed: number): Promise<Uint8Array> {
  if (kind === 'cxr1024') return (await chestDicom(seed, { size: 1024, lesions: 1 })).bytes;
  if (kind === 'cxr256') return (await chestDicom(seed, { size: 256, lesions: 1 })).bytes;
  const slice = brainPhantom(mulberry32(seed), 512);
  const px = new Uint16Array(slice.intensity.length);
  for (let i = 0; i < px.length; i++) px[i] = Math.round(Math.min(1, Math.max(0, slice.intensity[i]!)) * 4095);
  return writeDicom({ rows: 512, columns: 512, bitsAllocated: 16, bitsStored: 12, highBit: 11, pixelRepresentation: 0, photometricInterpretation: 'MONOCHROME2', pixels: px, sopInstanceUid: newUid(), modality: 'MR' });
}
const bodies = new Map<Kind, string[]>();
for (const kind of inputs) {
  const files: string[] = [];
  for (let seed = 1; seed <= 4; seed++) {
    const f = join(dir, `${kind}-${seed}.dcm`);
    await writeFile(f, await makeInput(kind, seed));
    files.push(f);
  }
  bodies.set(kind, files);
}
const INPUT_LABEL: Record<Kind, string> = {
  cxr1024: '1024² 8-bit JPEG Baseline radiograph',
  mr512: '512² 16-bit MR (uncompressed)',
  cxr256: '256² 8-bit JPEG Baseline radiograph',
};

// ---------- Python side available? ----------

let python = !a['no-python'];
let pythonNote = a['no-python'] ? 'skipped (--no-python)' : '';
let torchVersion = '';
if (python) {
  try {
    execFileSync('bash', [join(ROOT, 'scripts/bench-deps.sh'), '--check'], { stdio: ['ignore', 'pipe', 'pipe'] });
    torchVersion = execFileSync(PYTHON, ['-c', 'import torch, fastapi, pydicom; print(f"torch {torch.__version__}, fastapi {fastapi.__version__}, pydicom {pydicom.__version__}")'], { encoding: 'utf8' }).trim();
  } catch (e) {
    python = false;
    pythonNote = `skipped: ${String((e as { stderr?: Buffer }).stderr ?? e).trim().split('\n')[0]} (run bash scripts/bench-deps.sh)`;
  }
}

// ---------- raw ORT ----------

function runRaw(sessions: number, threads: number, seconds: number): Promise<RawResult> {
  const o = { onnx: model.onnxPath, input: model.manifest.input.name, size: modelSize, batch, sessions, threads, seconds };
  return runRawProcess(o, { cwd: ROOT, onSpawn: (child) => (current = child) });
}
const plans: Array<[number, number]> = [[1, cores]];
if (cores > 1) plans.push([cores, 1]);
if (cores >= 4) plans.push([2, Math.floor(cores / 2)]);

// ---------- servers ----------

interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}
async function startProcess(cmd: string, args: string[], env: Record<string, string>, readyPath: string, port: number, log: string, cwd?: string): Promise<Server> {
  const fd = openSync(log, 'a');
  const child = spawn(cmd, args, { cwd: cwd ?? ROOT, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  current = child;
  let exited = false;
  const exit = new Promise<void>((r) =>
    child.on('exit', () => {
      exited = true;
      r();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  for (;;) {
    if (exited) throw new Error(`${cmd} ${args.join(' ')} exited before it was ready; log: ${log}\n${readFileSync(log, 'utf8').slice(-2000)}`);
    if (Date.now() - t0 > 180_000) throw new Error(`not ready after 180 s; log: ${log}`);
    if (await fetch(url + readyPath).then((r) => r.status === 200, () => false)) break;
    await sleep(100);
  }
  return {
    url,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exit;
      clearTimeout(t);
    },
  };
}
async function startOurs(env: Record<string, string>, log: string, root?: string): Promise<Server> {
  const port = await freePort();
  // Only what locates the model and the port is set; everything else is the service's default.
  return startProcess(process.execPath, ['--import', 'tsx', 'services/main.ts'], { MODEL_REPOSITORY: join(dir, 'models'), PORT: String(port), HOST: '127.0.0.1', ...env }, '/readyz', port, log, root);
}
async function startPython(log: string): Promise<Server> {
  const port = await freePort();
  return startProcess(
    PYTHON,
    [join(HERE, 'fastapi_service.py'), '--port', String(port), '--workers', a['py-workers']],
    { MODEL_DIR: model.dir, PARITY_INPUT: join(dir, 'parity-input.bin'), PARITY_LOGITS: join(dir, 'parity-logits.bin'), PY_HANDLER: a['py-handler'] },
    '/healthz',
    port,
    log,
  );
}

/** Sum of every series of `name` in a Prometheus text exposition. */
function metric(text: string, name: string): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))) sum += Number(m[2]);
  return sum;
}
interface Stages {
  decode: number;
  preprocess: number;
  inference: number;
  postprocess?: number;
}
type StageReader = () => Promise<Record<string, number>>;
const oursStages: (s: Server) => StageReader = (s) => async () => {
  const t = await (await fetch(`${s.url}/metrics`)).text();
  const names = ['dicom_decode_duration_seconds_sum', 'dicom_decode_duration_seconds_count', 'preprocess_duration_seconds_sum', 'preprocess_duration_seconds_count', 'inference_duration_seconds_sum', 'inference_batch_size_sum', 'inference_batch_size_count'];
  return Object.fromEntries(names.map((n) => [n, metric(t, `unet_${n}`)]));
};
const oursStageMs = (d: Record<string, number>): Stages => ({
  decode: (1000 * d.dicom_decode_duration_seconds_sum!) / d.dicom_decode_duration_seconds_count!,
  preprocess: (1000 * d.preprocess_duration_seconds_sum!) / d.preprocess_duration_seconds_count!,
  // One observation per batch: per image = batch time / images in it.
  inference: (1000 * d.inference_duration_seconds_sum!) / d.inference_batch_size_sum!,
});
const pyStages: (s: Server) => StageReader = (s) => async () => (await (await fetch(`${s.url}/stats`)).json()) as Record<string, number>;
const pyStageMs = (d: Record<string, number>): Stages => ({
  decode: (1000 * d.decode!) / d.images!,
  preprocess: (1000 * d.preprocess!) / d.images!,
  inference: (1000 * d.inference!) / d.images!,
  postprocess: (1000 * d.postprocess!) / d.images!,
});

interface Row {
  input: Kind | 'none';
  what: string;
  imagesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpuMsPerImage: number;
  stages?: Stages;
  meanBatch?: number;
  rssMiB: number;
  errors: number;
  load: string;
  /** Foreground area of the first image's mask as this server answered it. */
  area?: number;
}

async function measure(server: Server, kind: Kind, stages: StageReader, stageMs: (d: Record<string, number>) => Stages, path = '/segment'): Promise<Omit<Row, 'input' | 'what' | 'load'>> {
  const loadProc = fork(join(HERE, 'load.ts'), ['--url', `${server.url}${path}`, ...bodies.get(kind)!.flatMap((f) => ['--body', f]), '--clients', String(clients), '--warmup', String(warmup), '--duration', String(duration)], {
    execArgv: ['--import', 'tsx'],
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  // CPU is read synchronously at each instant; the stage counters are fetched then (a busy server
  // may answer late: both sums and counts come from the same reading, so per-image means hold).
  let start: { cpu: number; st: Promise<Record<string, number>> } | undefined;
  let end: { cpu: number; st: Promise<Record<string, number>> } | undefined;
  let peakRss = 0;
  let sampler: NodeJS.Timeout | undefined;
  const result = await new Promise<any>((resolve, reject) => {
    loadProc.on('message', (m: any) => {
      if (m.event === 'window-start') {
        start = { cpu: treeCpuSeconds(server.pid), st: stages() };
        sampler = setInterval(() => (peakRss = Math.max(peakRss, treeRssMiB(server.pid))), 500);
      } else if (m.event === 'window-end') {
        end = { cpu: treeCpuSeconds(server.pid), st: stages() };
        clearInterval(sampler);
        peakRss = Math.max(peakRss, treeRssMiB(server.pid));
      } else if (m.event === 'result') resolve(m);
    });
    loadProc.on('exit', (code) => (code === 0 ? undefined : reject(new Error(`load.ts exited with ${code}`))));
  });
  if (!start || !end) throw new Error('load.ts did not report its window');
  const [st0, st1] = await Promise.all([start.st, end.st]);
  const delta = Object.fromEntries(Object.keys(st1).map((k) => [k, st1[k]! - st0[k]!]));
  // The first image's mask area, for the agreement line.
  const r = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: readFileSync(bodies.get(kind)![0]!) });
  const json = (await r.json()) as { masks?: Array<{ area?: number }> };
  return {
    imagesPerSecond: result.imagesPerSecond,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    cpuMsPerImage: (1000 * (end.cpu - start.cpu)) / result.ok,
    stages: stageMs(delta),
    ...(delta.inference_batch_size_count ? { meanBatch: delta.inference_batch_size_sum! / delta.inference_batch_size_count } : {}),
    rssMiB: peakRss,
    errors: result.failed,
    ...(json.masks?.[0]?.area !== undefined ? { area: json.masks[0].area } : {}),
  };
}

// ---------- the run ----------

const load1 = () => loadavg()[0]!.toFixed(1);
const rows: Row[] = [];
const header = `machine: ${cpus()[0]?.model ?? '?'}, ${cores} cores, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}; node ${process.version}, onnxruntime-node ${ort.env.versions.node}; ${torchVersion || 'python side ' + pythonNote}`;
console.log(header);
console.log(`model: random-weight UNet ${modelSize}x${modelSize}, depth ${a.depth}, base ${a.base}, ${a.upsample} up-sampling, head bias set for ${Number(a.foreground) > 0 ? `~${Number(a.foreground) * 100} % foreground` : 'nothing (fixture as is)'}; ${clients} closed-loop clients; ${duration} s per row after ${warmup} s warm-up${a.quick ? ' (--quick)' : ''}`);

try {
  // Raw ORT: try each thread plan briefly, keep the best, measure it for the full duration.
  const trial = Math.max(2, Math.min(5, duration / 4));
  let best: [number, number] = plans[0]!;
  let bestIps = 0;
  for (const [s, t] of plans) {
    const r = await runRaw(s, t, trial);
    console.log(`[raw] ${s} session(s) x ${t} intra-op thread(s), batch ${batch}: ${r.imagesPerSecond.toFixed(2)} images/s (${trial} s trial)`);
    if (r.imagesPerSecond > bestIps) [best, bestIps] = [[s, t], r.imagesPerSecond];
  }
  const rawLoad = load1();
  const raw = await runRaw(best[0], best[1], duration);
  rows.push({ input: 'none', what: `raw onnxruntime-node, ${best[0]} session(s) x ${best[1]} thread(s), batch ${batch}, random input, no decode/HTTP`, ...raw, errors: 0, load: rawLoad });
  console.log(`[raw] best plan: ${raw.imagesPerSecond.toFixed(2)} images/s`);

  for (const kind of inputs) {
    const variants: Array<{ what: string; start: (log: string) => Promise<Server>; py: boolean; path?: string }> = [
      { what: 'ours, defaults', start: (log) => startOurs({}, log), py: false },
      ...resizeRows.map((m) => ({ what: `ours, defaults, model pins resize ${m}`, start: (log: string) => startOurs({}, log), py: false, path: `/segment?model=unet-${m}` })),
      { what: `ours, ${a['alt-root'] ? `${a['alt-root']} ` : ''}${a.alt}`, start: (log) => startOurs(altEnv, log, a['alt-root']), py: false },
    ];
    if (python) variants.push({ what: `FastAPI + PyTorch (${a['py-workers']} uvicorn worker, ${a['py-handler']} handler)`, start: startPython, py: true });
    for (const v of variants) {
      const log = join(dir, `${kind}-${rows.length}.log`);
      logs.push(log);
      const l0 = load1();
      const server = await v.start(log);
      try {
        const m = await measure(server, kind, v.py ? pyStages(server) : oursStages(server), v.py ? pyStageMs : oursStageMs, v.path);
        rows.push({ input: kind, what: v.what, load: `${l0} / ${load1()}`, ...m });
        console.log(`[${kind}] ${v.what}: ${m.imagesPerSecond.toFixed(2)} images/s, p50 ${m.p50Ms} ms, p99 ${m.p99Ms} ms, ${m.cpuMsPerImage.toFixed(1)} CPU ms/image, ${m.errors} errors`);
      } finally {
        await server.stop();
      }
      if (v.py) {
        const parity = readFileSync(log, 'utf8').match(/parity: .*/)?.[0];
        if (parity) console.log(`[${kind}] FastAPI ${parity}`);
      }
    }
  }
} finally {
  cleanup();
}

// ---------- the table ----------

const f1 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(1));
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');
/** a / b, or '–' when either side measured nothing (no answer completed inside its window). */
const ratio = (x: number, y: number | undefined, unit = 'x') => (y !== undefined && x > 0 && y > 0 && Number.isFinite(x) && Number.isFinite(y) ? `${(x / y).toFixed(2)}${unit}` : '–');
const rawRow = rows.find((r) => r.input === 'none')!;
console.log(`\n${header}`);
console.log(`\n| input | what | images/s | p50 ms | p99 ms | CPU ms/image | stage ms/image: decode / preprocess / inference / post | mean batch | peak RSS MiB | errors | mask area, image 1 | load avg (start / end) |`);
console.log(`|${' --- |'.repeat(12)}`);
for (const r of rows) {
  const st = r.stages ? `${f1(r.stages.decode)} / ${f1(r.stages.preprocess)} / ${f1(r.stages.inference)} / ${f1(r.stages.postprocess)}` : '';
  const lat = r.input === 'none' ? `${f1(r.p50Ms)} (batch)` : r.p50Ms == null ? '–' : String(r.p50Ms);
  const lat99 = r.input === 'none' ? `${f1(r.p99Ms)} (batch)` : r.p99Ms == null ? '–' : String(r.p99Ms);
  console.log(`| ${r.input === 'none' ? 'model input 256², random' : INPUT_LABEL[r.input]} | ${r.what} | ${f2(r.imagesPerSecond)} | ${lat} | ${lat99} | ${f1(r.cpuMsPerImage)} | ${st} | ${r.meanBatch ? f2(r.meanBatch) : ''} | ${r.rssMiB.toFixed(0)} | ${r.errors} | ${r.area ?? ''} | ${r.load} |`);
}
console.log(`\n| input | ours, setting | images/s | ours / FastAPI | ours / raw ORT | CPU ms/image ours / FastAPI |`);
console.log(`|${' --- |'.repeat(6)}`);
for (const kind of inputs) {
  const py = rows.find((r) => r.input === kind && r.what.startsWith('FastAPI'));
  for (const r of rows.filter((x) => x.input === kind && x.what.startsWith('ours'))) {
    console.log(`| ${kind} | ${r.what.slice(6)} | ${f2(r.imagesPerSecond)} | ${ratio(r.imagesPerSecond, py?.imagesPerSecond)} | ${ratio(r.imagesPerSecond, rawRow.imagesPerSecond)} | ${ratio(r.cpuMsPerImage, py?.cpuMsPerImage, '')} |`);
  }
}
console.log(
  `\nimages/s: answers completed inside the window / window; CPU ms/image: CPU time of the server's process tree in the window / those answers (raw: its own process); ` +
    `stage ms: wall time per image from our /metrics histograms (inference = batch time / batch size; ours has no post-processing histogram) and the Python service's /stats; ` +
    `mask area: foreground pixels of the first image's mask as each server answered (the same weights should give close areas; resampling differs in detail).` +
    (pythonNote ? ` FastAPI rows ${pythonNote}.` : ''),
);
const report = { header, duration, warmup, clients, alt: altEnv, quick: a.quick, rows };
if (a.out) writeFileSync(a.out, JSON.stringify(report, null, 2));
if (process.env.REALPATH_KEEP) console.log(`kept ${dir} (REALPATH_KEEP)`);
else await rm(dir, { recursive: true, force: true });
