/**
 * Runs one stage of the flagship path `--iters` times after `--warmup` runs, on bench/stages/prepare.ts's
 * inputs. Under valgrind (bench/stages/count.sh) the instruction count of `--iters 0` is subtracted
 * from `--iters N`'s, leaving the stage's own instructions; without valgrind it prints CPU ms
 * (process.cpuUsage, less sensitive to a loaded machine than wall time) and wall ms per run.
 *
 *   node --import tsx bench/stages/driver.ts --stage STAGE [--iters 20] [--warmup 5]
 *
 * STAGE: decode (decodeDicom), preprocess (the processor's tensor), postprocess (the processor's
 * masks + the service's coco-compressed RLE), mask, rle (its two parts); and the JPEG decoders alone
 * on the frame's codestream: jpeg-extract (sharp, extractChannel(0), the old call), jpeg-bw (sharp,
 * b-w colourspace), jpeg-ijg (dcmjs-codecs' IJG wasm).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { readJpegHeader } from '../../core/dicom/codecs/codestream.ts';
import { decodeJpegIjg } from '../../core/dicom/codecs/jpeg-ijg.ts';
import { decodeDicom } from '../../core/dicom/decode.ts';
import { encapsulatedFrame } from '../../core/dicom/frames.ts';
import { parseDataset, readTransferSyntaxOnly } from '../../core/dicom/parse.ts';
import { readPixelModule } from '../../core/dicom/pixel-module.ts';
import { encodeMask } from '../../core/rle/index.ts';
import { SegmentationProcessor } from '../../core/segmentation/processor.ts';
import { STAGE_PREPROCESSING } from './inputs.ts';

const { values } = parseArgs({
  options: {
    stage: { type: 'string', default: 'decode' },
    iters: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '5' },
    dir: { type: 'string', default: '/tmp/bench-stages' },
  },
});
const iters = Number(values.iters);
const warmup = Number(values.warmup);
const bytes = new Uint8Array(readFileSync(join(values.dir!, 'cxr1024.dcm')));
const logitsBuf = readFileSync(join(values.dir!, 'logits256.f32'));
const logits = new Float32Array(logitsBuf.buffer.slice(logitsBuf.byteOffset, logitsBuf.byteOffset + logitsBuf.length));
const processor = new SegmentationProcessor({ preprocessing: STAGE_PREPROCESSING, activation: 'logits', labels: ['pneumothorax'] });
const image = await decodeDicom(bytes);
const output = new Float32Array(logits.length);
const masks = await processor.postprocess(Float32Array.from(logits), undefined, { rows: 1024, cols: 1024 });
const mask = masks[0]!.mask;

const head = readTransferSyntaxOnly(bytes);
const { dataSet } = parseDataset(bytes, head, 1 << 30);
const pm = readPixelModule(dataSet, 1 << 30);
const codestream = encapsulatedFrame(dataSet, dataSet.elements.x7fe00010!, pm, 0);
const jpegInfo = readJpegHeader(codestream);

let sink = 0;
const stages: Record<string, () => Promise<void> | void> = {
  async decode() {
    sink += (await decodeDicom(bytes)).max;
  },
  preprocess() {
    sink += processor.preprocess(image)[0]![1000]!;
  },
  /** The processor's postprocess plus the service's canonical RLE (services/segment/record.ts). */
  async postprocess() {
    output.set(logits);
    const [m] = await processor.postprocess(output, undefined, { rows: 1024, cols: 1024 });
    sink += encodeMask(m!.mask, 'coco-compressed').length;
  },
  async mask() {
    output.set(logits);
    sink += (await processor.postprocess(output, undefined, { rows: 1024, cols: 1024 }))[0]!.area;
  },
  rle() {
    sink += encodeMask(mask, 'coco-compressed').length;
  },
  async 'jpeg-extract'() {
    sink += (await sharp(codestream, { failOn: 'warning' }).extractChannel(0).raw().toBuffer())[5]!;
  },
  async 'jpeg-bw'() {
    sink += (await sharp(codestream, { failOn: 'warning' }).toColourspace('b-w').raw().toBuffer())[5]!;
  },
  async 'jpeg-ijg'() {
    sink += (await decodeJpegIjg(codestream, pm, jpegInfo, 'JPEG (IJG)')).samples[5]!;
  },
};
const fn = stages[values.stage!];
if (!fn) throw new Error(`unknown stage ${values.stage}`);
for (let i = 0; i < warmup; i++) await fn();
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < iters; i++) await fn();
const wall = performance.now() - t0;
const cpu = process.cpuUsage(c0);
if (iters > 0) {
  console.log(
    `${values.stage}: ${iters} runs, CPU ${((cpu.user + cpu.system) / 1000 / iters).toFixed(2)} ms/run, wall ${(wall / iters).toFixed(2)} ms/run (area ${masks[0]!.area}, sink ${sink.toFixed(3)})`,
  );
}
