/**
 * Raw onnxruntime throughput vs Engine.segment throughput on the same random-weight UNet.
 *
 *   node --import tsx bench/engine.ts [--sizes 256,512] [--seconds 4] [--workers 2] [--depth 4] [--base 16] [--max-batch 1,8] [--in-flight 32]
 *
 * Raw: the engine's own session setup (same workers, same intra-op threads per session, same
 * session options, each session in its own worker thread as the engine runs them), back-to-back
 * run() at each batch size the engine runs with: the ceiling for inference alone. Engine: the full path (DICOM decode,
 * preprocessing, queueing, dynamic batching, inference in worker threads, postprocessing to
 * original-size masks) with many requests in flight, on a synthetic chest DICOM of the model's size.
 */
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Engine, planThreads } from '../core/engine/index.ts';
import { chestDicom } from '../synth/index.ts';
import { makeModelRepository } from '../test/helpers/model-fixture.ts';
import { rawThroughput as rawOrt } from './raw-ort.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '256,512' },
    seconds: { type: 'string', default: '4' },
    workers: { type: 'string', default: String(Math.min(2, availableParallelism())) },
    depth: { type: 'string', default: '4' },
    base: { type: 'string', default: '16' },
    'max-batch': { type: 'string', default: '1,8' },
    'in-flight': { type: 'string', default: '32' },
  },
});
const sizes = values.sizes!.split(',').map(Number);
const seconds = Number(values.seconds);
const workers = Number(values.workers);
const maxBatches = values['max-batch']!.split(',').map(Number);
const inFlightLoad = Number(values['in-flight']);
const cores = availableParallelism();

const plan = planThreads({ workers, intraOpThreads: 0 }, cores);

async function rawThroughput(onnxPath: string, inputName: string, size: number, batch: number): Promise<{ ips: number; msPerBatch: number }> {
  const r = await rawOrt({
    onnxPath,
    inputName,
    chw: [1, size, size],
    batch,
    workers,
    session: { provider: 'cpu', deviceId: 0, intraOpThreads: plan.intraOpThreads },
    seconds,
  });
  return { ips: r.imagesPerSecond, msPerBatch: r.msPerBatch };
}

async function engineThroughput(repo: string, model: string, size: number, inFlight: number, maxBatch: number): Promise<{ ips: number; meanBatch: number; p50: number; p95: number; maxLoopDelayMs: number }> {
  const batches: number[] = [];
  const engine = await Engine.start(
    { modelRepository: repo, provider: 'cpu', deviceId: 0, workers, intraOpThreads: 0, maxBatch, maxDelayMs: 5, maxQueue: 4 * inFlight, maxPixels: 64 << 20 },
    pino({ level: 'warn' }),
    { batch: (_m, n) => void batches.push(n) },
  );
  try {
    const dicom = (await chestDicom(1, { size, lesions: 1 })).bytes;
    for (let i = 0; i < 4; i++) await engine.segment({ dicom, model });
    batches.length = 0;
    const latencies: number[] = [];
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const t0 = performance.now();
    let done = 0;
    const lane = async () => {
      while (performance.now() - t0 < seconds * 1000) {
        const r = await engine.segment({ dicom, model });
        latencies.push(r.timings.totalMs);
        done++;
      }
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
    const ms = performance.now() - t0;
    h.disable();
    latencies.sort((a, b) => a - b);
    return {
      ips: (done * 1000) / ms,
      meanBatch: batches.reduce((a, b) => a + b, 0) / Math.max(1, batches.length),
      p50: latencies[Math.floor(latencies.length * 0.5)]!,
      p95: latencies[Math.floor(latencies.length * 0.95)]!,
      maxLoopDelayMs: h.max / 1e6,
    };
  } finally {
    await engine.close();
  }
}

const dir = await mkdtemp(join(tmpdir(), 'bench-engine-'));
try {
  console.log(`CPU: ${cpus()[0]?.model ?? '?'} x ${cores}; UNet depth ${values.depth}, base ${values.base} channels; engine: ${workers} workers x ${plan.intraOpThreads} intra-op thread(s), maxDelayMs 5`);
  const entries = await makeModelRepository(
    dir,
    sizes.map((s) => ({ name: `unet${s}`, version: '1', size: s, depth: Number(values.depth), baseChannels: Number(values.base), upsample: 'bilinear' as const })),
  );
  const rows: string[] = ['| size | path | batch / in flight | images/s | ms per batch | mean batch | p50 ms | p95 ms | max loop delay ms |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- |'];
  for (const e of entries) {
    const size = e.manifest.input.shape[2];
    for (const b of maxBatches) {
      const r = await rawThroughput(e.onnxPath, e.manifest.input.name, size, b);
      rows.push(`| ${size}² | raw ORT, ${workers} session(s) x ${plan.intraOpThreads} intra-op thread(s) | ${b} | ${r.ips.toFixed(1)} | ${r.msPerBatch.toFixed(1)} | | | | |`);
      console.log(rows.at(-1));
    }
    const runs: Array<[number, number]> = [[1, Math.max(...maxBatches)], ...maxBatches.map((b) => [inFlightLoad, b] as [number, number])];
    for (const [inFlight, maxBatch] of runs) {
      const r = await engineThroughput(dir, e.name, size, inFlight, maxBatch);
      rows.push(`| ${size}² | Engine.segment (decode+pre+infer+post), maxBatch ${maxBatch} | ${inFlight} in flight | ${r.ips.toFixed(1)} | | ${r.meanBatch.toFixed(2)} | ${r.p50.toFixed(0)} | ${r.p95.toFixed(0)} | ${r.maxLoopDelayMs.toFixed(1)} |`);
      console.log(rows.at(-1));
    }
  }
  console.log('\n' + rows.join('\n'));
  console.log(`\nload average during the run: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (other processes share these cores)`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
