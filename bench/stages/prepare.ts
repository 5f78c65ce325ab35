/**
 * Inputs for the per-stage instruction counts (bench/stages/count.sh), written once so the driver
 * that runs under valgrind does no ORT or synthesis work:
 *   - cxr1024.dcm: issue 11's flagship input, a 1024x1024 8-bit JPEG Baseline chest phantom
 *     (synth's chestDicom, seed 1, one lesion), as bench/realpath sends;
 *   - logits256.f32: the network output for it: bench/realpath's model (random-weight UNet, depth 4,
 *     base 16, nearest up-sampling, seed 1) with the head's bias shifted so ~3 % is foreground.
 *
 *   node --import tsx bench/stages/prepare.ts [--out /tmp/bench-stages]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { decodeDicom } from '../../core/dicom/decode.ts';
import { SegmentationProcessor } from '../../core/segmentation/processor.ts';
import { chestDicom } from '../../synth/siim.ts';
import { buildInferenceOnnx } from '../../trainer/model/inference-graph.ts';
import { initUNetParams } from '../../trainer/model/unet.ts';
import { STAGE_PREPROCESSING } from './inputs.ts';

const { values } = parseArgs({ options: { out: { type: 'string', default: '/tmp/bench-stages' }, foreground: { type: 'string', default: '0.03' } } });
const out = values.out!;
await mkdir(out, { recursive: true });

const dicom = await chestDicom(1, { size: 1024, lesions: 1 });
const image = await decodeDicom(dicom.bytes);
const processor = new SegmentationProcessor({ preprocessing: STAGE_PREPROCESSING, activation: 'logits', labels: ['pneumothorax'] });
const [x] = processor.preprocess(image);

const cfg = { depth: 4, baseChannels: 16, inChannels: 1, classes: 1, upsample: 'nearest' as const };
const weights = initUNetParams(cfg, 1);
const run = async () => {
  const s = await ort.InferenceSession.create(buildInferenceOnnx(cfg, 256, 256, weights));
  const r = await s.run({ image: new ort.Tensor('float32', x!, [1, 1, 256, 256]) });
  await s.release();
  return Float32Array.from(r.logits!.data as Float32Array);
};
const fraction = Number(values.foreground);
if (fraction > 0) {
  const sorted = (await run()).sort();
  weights.get('head.bias')![0]! -= sorted[Math.floor(sorted.length * (1 - fraction))]!;
}
const logits = await run();
await writeFile(join(out, 'cxr1024.dcm'), dicom.bytes);
await writeFile(join(out, 'logits256.f32'), new Uint8Array(logits.buffer));
console.log(`wrote ${out}/cxr1024.dcm (${dicom.bytes.length} bytes) and logits256.f32 (${logits.filter((v) => v > 0).length} of ${logits.length} logits > 0)`);
