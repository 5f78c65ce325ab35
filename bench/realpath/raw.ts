/**
 * Raw onnxruntime-node throughput, as its own process (so its CPU time and RSS are its own):
 * `sessions` plain sessions (raw-worker.ts), each in its own worker thread with `threads` intra-op
 * threads, each running batches of `batch` random images back to back for `seconds`. Prints one
 * JSON line: images/s, per-batch latency p50/p99, CPU ms per image, peak RSS.
 *
 *   node --import tsx bench/realpath/raw.ts --onnx model.onnx --input image --size 256 --batch 8 --sessions 1 --threads 2 --seconds 20
 *        [--provider cpu|cuda] [--device-id 0]
 */
import { Worker } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import type { RawWorkerData } from './raw-worker.ts';

const { values: a } = parseArgs({
  options: {
    onnx: { type: 'string' },
    input: { type: 'string', default: 'image' },
    size: { type: 'string', default: '256' },
    batch: { type: 'string', default: '8' },
    sessions: { type: 'string', default: '1' },
    threads: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '20' },
    provider: { type: 'string', default: 'cpu' },
    'device-id': { type: 'string', default: '0' },
  },
});
if (a.provider !== 'cpu' && a.provider !== 'cuda') throw new Error(`--provider must be cpu or cuda, got ${a.provider}`);

/** A .ts worker needs tsx registered inside the worker first. */
function spawnTsWorker(entry: URL, data: unknown): Worker {
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { eval: true, workerData: data, execArgv: [] });
}

const size = Number(a.size);
const batch = Number(a.batch);
const data: RawWorkerData = { onnxPath: a.onnx!, inputName: a.input!, shape: [batch, 1, size, size], intraOpThreads: Number(a.threads), provider: a.provider, deviceId: Number(a['device-id']) };
const workers = Array.from({ length: Number(a.sessions) }, () => spawnTsWorker(new URL('./raw-worker.ts', import.meta.url), data));
const next = (w: Worker) =>
  new Promise<any>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
await Promise.all(workers.map(next));
const seconds = Number(a.seconds);
const startAt = Date.now() + 100;
const endAt = startAt + seconds * 1000;
const done = workers.map(next);
for (const w of workers) w.postMessage({ startAt, endAt });
let peakRss = 0;
const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 250);
while (Date.now() < startAt) await new Promise((r) => setTimeout(r, 1));
const cpu0 = process.cpuUsage();
const results = (await Promise.all(done)) as Array<{ runMs: number[]; endedAt: number }>;
const cpu = process.cpuUsage(cpu0);
const elapsed = (Math.max(...results.map((r) => r.endedAt)) - startAt) / 1000;
clearInterval(rssTimer);
peakRss = Math.max(peakRss, process.memoryUsage.rss());
await Promise.all(workers.map((w) => w.terminate()));
const runs = results.flatMap((r) => r.runMs).sort((x, y) => x - y);
const images = runs.length * batch;
const pct = (p: number) => runs[Math.min(runs.length - 1, Math.floor(runs.length * p))] ?? NaN;
process.stdout.write(
  JSON.stringify({
    imagesPerSecond: images / elapsed,
    images,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    // CPU of all threads from the window's start to the last run's end.
    cpuMsPerImage: (cpu.user + cpu.system) / 1000 / images,
    rssMiB: peakRss / 2 ** 20,
  }) + '\n',
);
