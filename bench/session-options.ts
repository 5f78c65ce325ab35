/**
 * Issue 11, item 4 ("inference"): which onnxruntime CPU session options matter for the served UNet.
 * Each variant is one single-threaded session in a process of its own (sessions sharing a process
 * measured up to 2x apart for the same graph, by where their memory landed: fresh memory is costly
 * on this VM), batch 8 (the engine's default maximum); the variants take turns, `--rounds` times, so
 * a neighbour's load falls on all of them alike. Prints the median ms per batch and each variant's
 * ratio to the baseline (the engine's own options, core/runtime/session.ts), and checks every
 * variant computes the same outputs.
 *
 *   node --import tsx bench/session-options.ts [--rounds 3] [--runs 5] [--size 256] [--batch 8]
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import * as ort from 'onnxruntime-node';
import { BATCH_DIM, buildInferenceOnnx, INPUT_NAME, OUTPUT_NAME } from '../trainer/model/inference-graph.ts';
import { initUNetParams } from '../trainer/model/unet.ts';

const { values: a } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    runs: { type: 'string', default: '5' },
    variant: { type: 'string' },
    size: { type: 'string', default: '256' },
    batch: { type: 'string', default: '8' },
  },
});
const size = Number(a.size);
const batch = Number(a.batch);
const rounds = Number(a.rounds);

const cfg = { depth: 4, baseChannels: 16, inChannels: 1, classes: 1, upsample: 'nearest' as const };
const weights = initUNetParams(cfg, 1);
const plain = buildInferenceOnnx(cfg, size, size, weights);
const folded = buildInferenceOnnx(cfg, size, size, weights, { foldBatchNorm: true });

// The engine's options (core/runtime/session.ts baseOptions) with one intra-op thread.
const base: ort.InferenceSession.SessionOptions = {
  executionProviders: ['cpu'],
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  extra: { session: { intra_op: { allow_spinning: '0' } } },
};

const VARIANTS: Array<{ name: string; model: Uint8Array; options: ort.InferenceSession.SessionOptions }> = [
  { name: 'engine options (baseline)', model: plain, options: base },
  { name: 'graph optimisation extended', model: plain, options: { ...base, graphOptimizationLevel: 'extended' } },
  { name: 'graph optimisation basic', model: plain, options: { ...base, graphOptimizationLevel: 'basic' } },
  { name: 'no CPU memory arena', model: plain, options: { ...base, enableCpuMemArena: false } },
  { name: 'no memory pattern', model: plain, options: { ...base, enableMemPattern: false } },
  { name: `batch dimension fixed to ${batch}`, model: plain, options: { ...base, freeDimensionOverrides: { [BATCH_DIM]: batch } } },
  { name: 'BatchNorm folded in the export', model: folded, options: base },
];

const x = new Float32Array(batch * size * size).map((_, i) => ((i * 2654435761) % 1000) / 1000);
const feeds = { [INPUT_NAME]: new ort.Tensor('float32', x, [batch, 1, size, size]) };
const median = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)]!;

if (a.variant !== undefined) {
  // Child: one variant, one session; prints its median ms per batch and a checksum of its outputs.
  const v = VARIANTS[Number(a.variant)]!;
  const s = await ort.InferenceSession.create(v.model, v.options);
  for (let i = 0; i < 2; i++) await s.run(feeds);
  const ms: number[] = [];
  let out: Float32Array | undefined;
  for (let i = 0; i < Number(a.runs); i++) {
    const t0 = performance.now();
    out = (await s.run(feeds))[OUTPUT_NAME]!.data as Float32Array;
    ms.push(performance.now() - t0);
  }
  await s.release();
  process.stdout.write(JSON.stringify({ ms: median(ms), sample: Array.from(out!.subarray(0, 4096)) }));
  process.exit(0);
}

const load0 = loadavg()[0]!.toFixed(1);
const times: number[][] = VARIANTS.map(() => []);
const samples: number[][] = [];
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < VARIANTS.length; k++) {
    const args = ['--import', 'tsx', new URL(import.meta.url).pathname, '--variant', String(k), '--runs', a.runs!, '--size', String(size), '--batch', String(batch)];
    const res = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 26 })) as { ms: number; sample: number[] };
    times[k]!.push(res.ms);
    samples[k] = res.sample;
  }
}
const maxDiff = samples.map((smp) => smp.reduce((d, v, i) => Math.max(d, Math.abs(v - samples[0]![i]!)), 0));
const baseMs = median(times[0]!);
console.log(`UNet ${size}x${size} depth 4 base 16, batch ${batch}, 1 intra-op thread, one process per variant, ${rounds} rounds x ${a.runs} runs; load average ${load0} -> ${loadavg()[0]!.toFixed(1)}`);
console.log('| variant | median ms / batch | ms / image | vs baseline | max |diff| of outputs |');
console.log('|---|---|---|---|---|');
VARIANTS.forEach((v, k) => {
  const m = median(times[k]!);
  console.log(`| ${v.name} | ${m.toFixed(1)} | ${(m / batch).toFixed(2)} | ${(m / baseMs).toFixed(3)} | ${maxDiff[k]!.toExponential(1)} |`);
});
