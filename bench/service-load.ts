/**
 * Service load benchmark: images/s and latency of POST /segment under autocannon, against the raw
 * onnxruntime throughput of the same model with the same session options and batch size, measured
 * in the same run on the same machine.
 *
 *   node --import tsx bench/service-load.ts [--sizes 256,512] [--duration 20] [--workers 1]
 *       [--max-batch 4] [--delay-ms 5] [--connections N] [--depth 4] [--base 16] [--intra-op 0]
 *       [--preview-max-side 256] [--repeat 1] [--spinning 0] [--image-size N]
 *
 * The DICOM sent is the model's size unless `--image-size` says otherwise (e.g. 1024 for radiographs
 * served by a 256 model: then preprocessing resizes down and the masks are resampled back up).
 *
 * For each size: build a random-weight UNet (depth/base as given), measure raw ORT images/s at batch
 * = MAX_BATCH (server not running, so nothing competes) before and after the service run (averaged),
 * and in between start `npm start` as a child process with that model and drive it from this
 * process with autocannon. Raw ORT runs `workers` sessions with the engine's session options
 * (session-factory.ts) and its thread plan, each in its own worker thread as the engine runs them
 * (onnxruntime-node's run() occupies the calling JS thread, so sessions sharing one thread would
 * never overlap and the raw side would be understated). The input is random noise in [0, 1), as
 * the preprocessed image is; a conv net's speed does not depend on the values.
 *
 * The service is measured in steady state: one continuous autocannon run (warm-up, window, tail)
 * and the window's completed segmentations read from the server's own counters, so requests a
 * warm-up run would have abandoned in the queue cannot eat into the window.
 *
 * `--repeat` runs the whole cycle again, to show the noise of a shared machine; every row carries
 * the load average and the CPU other processes used meanwhile. "ORT occupancy" is the share of the
 * window each worker spent inside session.run, measured in the same window as the service's
 * throughput: unlike service/raw it does not move with the neighbours' load between the phases,
 * and 1 - occupancy is the time ORT waited for the rest of the pipeline. The ratio service/raw is the
 * figure of merit (target >= 0.9): it is what HTTP, DICOM decode, preprocessing, postprocessing,
 * RLE, the preview and the result store cost on top of the network itself.
 *
 * On a shared machine wall-clock throughput moves with whatever else runs, so the CPU time per
 * image (all threads of the measuring process for raw, of the server process for the service) is
 * printed too: it is what the service costs per image, whatever the neighbours do.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import * as ort from 'onnxruntime-node';
import { newUid, writeDicom } from '../core/dicom/write.ts';
import { planThreads } from '../core/runtime/session.ts';
import { makeModelRepository } from '../test/helpers/model-fixture.ts';
import { processCpuSeconds, rawThroughput as rawOrt } from './raw-ort.ts';
import { freePort } from '../test/helpers/net.ts';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '256,512' },
    duration: { type: 'string', default: '20' },
    workers: { type: 'string', default: '1' },
    'max-batch': { type: 'string', default: '4' },
    'delay-ms': { type: 'string', default: '5' },
    connections: { type: 'string' },
    depth: { type: 'string', default: '4' },
    base: { type: 'string', default: '16' },
    'intra-op': { type: 'string', default: '0' },
    'preview-max-side': { type: 'string', default: '256' },
    repeat: { type: 'string', default: '1' },
    spinning: { type: 'string', default: '0' },
    'image-size': { type: 'string' },
  },
});

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const sizes = args.sizes.split(',').map(Number);
const duration = Number(args.duration);
const workers = Number(args.workers);
const maxBatch = Number(args['max-batch']);
const delayMs = Number(args['delay-ms']);
const depth = Number(args.depth);
const base = Number(args.base);
const plan = planThreads({ workers, intraOpThreads: Number(args['intra-op']) });
const repeat = Number(args.repeat);
const imageSize = args['image-size'] ? Number(args['image-size']) : undefined;
// Enough requests in flight that every worker fills a batch while the previous one runs and the
// next ones are being decoded.
const connections = args.connections ? Number(args.connections) : workers * maxBatch * 4;

function dicomOf(size: number): Uint8Array {
  const px = new Uint16Array(size * size);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) px[y * size + x] = 100 + ((x * 7 + y * 13) % 3000) + (Math.hypot(x - size / 2, y - size / 2) < size / 4 ? 1000 : 0);
  return writeDicom({ rows: size, columns: size, bitsAllocated: 16, bitsStored: 12, pixels: px, sopInstanceUid: newUid(), modality: 'DX' });
}

/** Raw ORT at the service's batch size, session options and thread plan (see the header). */
async function rawThroughput(model: { onnxPath: string; manifest: { input: { name: string } } }, size: number, seconds: number) {
  const m0 = machineCpuSeconds();
  const c0 = processCpuSeconds(process.pid);
  const t0 = performance.now();
  const r = await rawOrt({
    onnxPath: model.onnxPath,
    inputName: model.manifest.input.name,
    chw: [1, size, size],
    batch: maxBatch,
    workers,
    session: { provider: 'cpu', deviceId: 0, intraOpThreads: plan.intraOpThreads, intraOpSpinning: args.spinning === '1' },
    seconds,
  });
  // Includes the sessions' start and warm-up: a rough figure for what the neighbours used meanwhile.
  const wall = (performance.now() - t0) / 1000;
  return { ...r, othersCores: (machineCpuSeconds() - m0 - (processCpuSeconds(process.pid) - c0)) / wall };
}

/** Busy CPU seconds of the whole machine (all cores) so far, from /proc/stat. */
function machineCpuSeconds(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / 100;
  } catch {
    return NaN;
  }
}

const WARMUP_S = 4;
const TAIL_S = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Server counters and CPU figures at one instant, for a measurement window between two of them. */
async function snapshot(server: { url: string; pid: number }) {
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  return { at: performance.now(), metrics, serverCpu: processCpuSeconds(server.pid), clientCpu: processCpuSeconds(process.pid), machineCpu: machineCpuSeconds() };
}

const load1 = () => loadavg()[0]!.toFixed(1);

async function startServer(env: Record<string, string>): Promise<{ url: string; pid: number; stop: () => Promise<number | null> }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  let exited = false;
  const exit = new Promise<number | null>((r) =>
    child.on('exit', (code) => {
      exited = true;
      r(code);
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (exited) throw new Error('server exited before it was ready');
    if (await fetch(`${url}/readyz`).then((r) => r.status === 200, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      return exit;
    },
  };
}

/** Sum of every series of `name` (all label sets, or those whose labels contain `label`). */
function metricValue(text: string, name: string, label?: string): number {
  let sum = 0;
  let found = false;
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))) {
    if (label && !(m[1] ?? '').includes(label)) continue;
    sum += Number(m[2]);
    found = true;
  }
  return found ? sum : label ? 0 : NaN;
}

interface Row {
  size: number;
  /** 1-based repetition. */
  run: number;
  /** 1-minute load average before the raw run and after the service run. */
  load: [string, string];
  rawImagesPerSecond: number;
  rawMsPerBatch: number;
  serviceImagesPerSecond: number;
  ratio: number;
  /** Share of the measured window each worker spent inside session.run (1 = ORT never waited). */
  ortOccupancy: number;
  /** CPU cores other processes on the machine used meanwhile (raw: averaged before/after). */
  othersCores: { raw: number; service: number };
  p50Ms: number;
  p99Ms: number;
  meanBatch: number;
  requests: number;
  errors: number;
  rawCpuMsPerImage: number;
  serviceCpuMsPerImage: number;
  /** CPU of this process (autocannon) per answered request: it shares the cores with the server. */
  clientCpuMsPerRequest: number;
  /** Per image, from the service's histograms: decode, preprocess (engine worker), ORT run. */
  stageMs: { decode: number; preprocess: number; inference: number };
}

const rows: Row[] = [];
const env = {
  WORKERS: String(workers),
  INTRA_OP_THREADS: String(plan.intraOpThreads),
  INTRA_OP_SPINNING: args.spinning,
  MAX_BATCH: String(maxBatch),
  MAX_BATCH_DELAY_MS: String(delayMs),
  MAX_QUEUE: String(Math.max(64, connections * 2)),
  LOG_LEVEL: 'warn',
  EXECUTION_PROVIDER: 'cpu',
  PREVIEW_MAX_SIDE: args['preview-max-side'],
};
console.log(`machine: ${cpus()[0]?.model ?? 'unknown cpu'}, ${availableParallelism()} cores, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}, node ${process.version}, onnxruntime-node ${ort.env.versions.node}`);
console.log(`model: random-weight UNet depth ${depth}, base ${base} channels, 1 -> 1 channel; env ${JSON.stringify(env)}; autocannon ${connections} connections, ${duration} s per size; images ${imageSize ? `${imageSize}x${imageSize}` : 'at the model size'}`);

for (const size of sizes) {
  const dir = await mkdtemp(join(tmpdir(), 'unetseg-bench-'));
  try {
    const [entry] = await makeModelRepository(dir, [{ name: `unet${size}`, version: '1', size, depth, baseChannels: base, seed: 1 }]);
    for (let run = 1; run <= repeat; run++) {
      const loadBefore = load1();
      // Raw before and after the service run, averaged, so a drift in background load hits both sides.
      const rawBefore = await rawThroughput(entry!, size, Math.max(5, duration / 4));
      console.log(`[${size} #${run}] raw ORT (before): ${rawBefore.imagesPerSecond.toFixed(2)} images/s (${rawBefore.msPerBatch.toFixed(1)} ms per batch of ${maxBatch}), load ${loadBefore}, other processes ${rawBefore.othersCores.toFixed(2)} cores`);

      const server = await startServer({ ...env, MODEL_REPOSITORY: dir });
      const body = Buffer.from(dicomOf(imageSize ?? size));
      // Timeout well above the queueing delay of a full queue on a slow CPU: a timeout is not a server error.
      const opts = { url: `${server.url}/segment`, method: 'POST' as const, headers: { 'content-type': 'application/dicom' }, body, connections, pipelining: 1, timeout: 120 };
      // One continuous load: warm-up, the measured window, and a tail so the window closes under load.
      // (A separate warm-up run would leave its in-flight requests queued in the server, to be served
      // inside the measured window and not counted.) The window is read from the server's own
      // counters, so it holds steady state only.
      const loadRun = autocannon({ ...opts, duration: WARMUP_S + duration + TAIL_S });
      await sleep(WARMUP_S * 1000);
      const before = await snapshot(server);
      await sleep(duration * 1000);
      const after = await snapshot(server);
      const r = await loadRun;
      const seconds = (after.at - before.at) / 1000;
      const cpu = after.serverCpu - before.serverCpu;
      const clientCpu = after.clientCpu - before.clientCpu;
      const othersCores = (after.machineCpu - before.machineCpu - cpu - clientCpu) / seconds;
      const loadAfter = load1();
      // The service's own metrics carry the unet_ prefix.
      const delta = (name: string) => metricValue(after.metrics, `unet_${name}`) - metricValue(before.metrics, `unet_${name}`);
      const batches = delta('inference_batch_size_count');
      const images = delta('inference_batch_size_sum');
      const ok = metricValue(after.metrics, 'unet_segmentations_total', 'outcome="ok"') - metricValue(before.metrics, 'unet_segmentations_total', 'outcome="ok"');
      const code = await server.stop();
      if (code !== 0) console.warn(`server exited with ${code}`);
      const rawAfter = await rawThroughput(entry!, size, Math.max(5, duration / 4));
      console.log(`[${size} #${run}] raw ORT (after): ${rawAfter.imagesPerSecond.toFixed(2)} images/s`);
      const raw = {
        imagesPerSecond: (rawBefore.imagesPerSecond + rawAfter.imagesPerSecond) / 2,
        msPerBatch: (rawBefore.msPerBatch + rawAfter.msPerBatch) / 2,
        cpuMsPerImage: (rawBefore.cpuMsPerImage + rawAfter.cpuMsPerImage) / 2,
        othersCores: (rawBefore.othersCores + rawAfter.othersCores) / 2,
      };
      const serviceIps = ok / seconds;
      const inferenceMsPerImage = (delta('inference_duration_seconds_sum') * 1000) / images;
      rows.push({
        size,
        run,
        load: [loadBefore, loadAfter],
        rawImagesPerSecond: raw.imagesPerSecond,
        rawMsPerBatch: raw.msPerBatch,
        serviceImagesPerSecond: serviceIps,
        ratio: serviceIps / raw.imagesPerSecond,
        ortOccupancy: (serviceIps * inferenceMsPerImage) / 1000 / workers,
        othersCores: { raw: raw.othersCores, service: othersCores },
        p50Ms: r.latency.p50,
        p99Ms: r.latency.p99,
        meanBatch: images / batches,
        requests: ok,
        errors: r.non2xx + r.errors,
        rawCpuMsPerImage: raw.cpuMsPerImage,
        serviceCpuMsPerImage: (cpu * 1000) / images,
        clientCpuMsPerRequest: (clientCpu * 1000) / Math.max(1, ok),
        stageMs: {
          decode: (delta('dicom_decode_duration_seconds_sum') * 1000) / delta('dicom_decode_duration_seconds_count'),
          preprocess: (delta('preprocess_duration_seconds_sum') * 1000) / delta('preprocess_duration_seconds_count'),
          inference: inferenceMsPerImage,
        },
      });
      console.log(`[${size} #${run}] service: ${serviceIps.toFixed(2)} images/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, mean batch ${(images / batches).toFixed(2)}, ${r.non2xx + r.errors} errors, load ${loadAfter}, other processes ${othersCores.toFixed(2)} cores`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

console.log(
  '\n| model | run | load avg | other procs, cores (raw / service) | raw ORT images/s | service images/s | service/raw | ORT occupancy | p50 ms | p99 ms | mean batch | CPU ms/image raw | CPU ms/image service | client CPU ms/request | decode / preprocess / ORT ms per image | requests | errors |',
);
console.log(`|${' --- |'.repeat(17)}`);
for (const r of rows) {
  console.log(
    `| ${r.size}x${r.size} | ${r.run} | ${r.load.join(' / ')} | ${r.othersCores.raw.toFixed(2)} / ${r.othersCores.service.toFixed(2)} | ${r.rawImagesPerSecond.toFixed(2)} | ${r.serviceImagesPerSecond.toFixed(2)} | ${r.ratio.toFixed(3)} | ${r.ortOccupancy.toFixed(3)} | ` +
      `${r.p50Ms} | ${r.p99Ms} | ${r.meanBatch.toFixed(2)} | ${r.rawCpuMsPerImage.toFixed(1)} | ${r.serviceCpuMsPerImage.toFixed(1)} | ${r.clientCpuMsPerRequest.toFixed(1)} | ` +
      `${r.stageMs.decode.toFixed(1)} / ${r.stageMs.preprocess.toFixed(1)} / ${r.stageMs.inference.toFixed(1)} | ${r.requests} | ${r.errors} |`,
  );
}
console.log(JSON.stringify({ env, connections, duration, depth, base, rows }));
