/**
 * Where should decode + preprocessing + postprocessing run? This measures how long each step blocks
 * the calling thread's event loop, which is what the HTTP service would suffer if it ran on the main
 * thread. sharp (JPEG baseline) works on libuv's pool; the wasm codecs (JPEG-LS, JPEG 2000, lossless
 * JPEG) and the JS resampling in core/preprocess are synchronous.
 *
 *   node --import tsx bench/decode-placement.ts [--reps 5]
 *
 * "longest block" = the largest gap between consecutive setImmediate ticks while the step runs
 * (the longest stretch the event loop could not serve anything else).
 */
import { parseArgs } from 'node:util';
import { decodeDicom } from '../core/dicom/decode.ts';
import { TS } from '../core/dicom/transfer-syntax.ts';
import { baseInput, makeDicomVariant } from '../core/dicom/testing/fixtures.ts';
import { newUid } from '../core/dicom/write.ts';
import { toTensor } from '../core/preprocess/index.ts';
import { probabilitiesToMask } from '../core/segmentation/postprocess.ts';
import type { PreprocessSpec } from '../core/preprocess/spec.ts';
import { chestDicom } from '../synth/index.ts';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '5' } } });
const reps = Number(values.reps);

/** Run `fn` while a setImmediate chain measures the longest gap; median over reps. */
async function measure(fn: () => Promise<unknown>): Promise<{ wallMs: number; blockMs: number }> {
  await fn(); // warm (JIT, wasm instantiation)
  const walls: number[] = [];
  const blocks: number[] = [];
  for (let r = 0; r < reps; r++) {
    let last = performance.now();
    let maxGap = 0;
    let running = true;
    const tick = () => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const t0 = performance.now();
    await fn();
    const wall = performance.now() - t0;
    running = false;
    maxGap = Math.max(maxGap, performance.now() - last);
    walls.push(wall);
    blocks.push(maxGap);
  }
  const med = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  return { wallMs: med(walls), blockMs: med(blocks) };
}

const spec = (n: number): PreprocessSpec => ({ size: { height: n, width: n }, resize: 'bilinear', intensity: { kind: 'minmax' }, channels: 1 });

const cases: Array<[string, Uint8Array]> = [
  ['1024² JPEG baseline (sharp)', (await chestDicom(1, { size: 1024, lesions: 1 })).bytes],
  ['512² JPEG 2000 lossless 8-bit (wasm)', await makeDicomVariant(baseInput({ rows: 512, columns: 512, bitsAllocated: 8 }, { sopInstanceUid: newUid() }), TS.JPEG2000Lossless)],
  ['1024² JPEG 2000 lossless 12-bit (wasm)', await makeDicomVariant(baseInput({ rows: 1024, columns: 1024, bitsAllocated: 16, bitsStored: 12 }), TS.JPEG2000Lossless)],
  ['1024² JPEG-LS lossless 12-bit (wasm)', await makeDicomVariant(baseInput({ rows: 1024, columns: 1024, bitsAllocated: 16, bitsStored: 12 }), TS.JPEGLSLossless)],
  ['1024² native 16-bit', await makeDicomVariant(baseInput({ rows: 1024, columns: 1024, bitsAllocated: 16, bitsStored: 12 }), TS.ExplicitVRLittleEndian)],
];

const rows = ['| step | wall ms | longest event-loop block ms |', '| --- | --- | --- |'];
const add = (name: string, r: { wallMs: number; blockMs: number }) => {
  rows.push(`| ${name} | ${r.wallMs.toFixed(1)} | ${r.blockMs.toFixed(1)} |`);
  console.log(rows.at(-1));
};
for (const [name, bytes] of cases) {
  add(`decodeDicom ${name}`, await measure(() => decodeDicom(bytes)));
  const image = await decodeDicom(bytes);
  for (const n of [256, 512]) add(`toTensor ${image.rows}² -> ${n}²`, await measure(() => toTensor(image, spec(n))));
}
for (const m of [256, 512]) {
  const probs = new Float32Array(m * m).map((_, i) => ((i * 2654435761) % 1000) / 1000);
  add(`probabilitiesToMask ${m}² -> 1024²`, await measure(() => probabilitiesToMask(probs, m, m, 1024, 1024, 0.5)));
}
console.log('\n' + rows.join('\n'));
