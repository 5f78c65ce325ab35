/**
 * Held-out evaluation of an exported model on a labelled dataset, through the service's own path:
 * the model's manifest builds core/segmentation's processor, onnxruntime runs model.onnx (CPU, as
 * the service's fallback), masks come back at each image's original size, and each label is scored
 * against its truth (Dice, empty/empty = 1, per image, then the mean over images).
 *
 *   node --import tsx trainer/evaluate.ts --model models/<name>/<version> --data <dir> --layout <layout>
 *
 * Any trainer layout works; for a softmax model the per-class Dice of the non-background classes and
 * their mean are printed (and written with --json FILE).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { createMask } from '../core/mask.ts';
import { parseManifest } from '../core/manifest.ts';
import { dice } from '../core/metrics/index.ts';
import { SegmentationProcessor } from '../core/segmentation/processor.ts';
import { decodeSample } from './data/decode.ts';
import { scanDataset } from './data/scan.ts';
import type { Layout } from './data/types.ts';

export interface Evaluation {
  images: number;
  /** Mean per-image Dice of each scored label. */
  labelDice: Record<string, number>;
  /** Mean over the scored labels. */
  meanDice: number;
}

export async function evaluateModel(modelDir: string, data: string, layout: Layout, threads = 2): Promise<Evaluation> {
  const manifest = parseManifest(JSON.parse(await readFile(join(modelDir, 'model.json'), 'utf8')), join(modelDir, 'model.json'));
  const processor = SegmentationProcessor.fromManifest(manifest);
  const scan = await scanDataset(layout, data);
  if (scan.classes && JSON.stringify(scan.classes) !== JSON.stringify(manifest.labels)) throw new Error(`classes.json (${scan.classes.join(',')}) is not the model's labels (${manifest.labels.join(',')})`);
  const session = await ort.InferenceSession.create(join(modelDir, 'model.onnx'), { intraOpNumThreads: threads, executionProviders: ['cpu'] });
  const scored = processor.maskLabels;
  const sums = new Map(scored.map((l) => [l, 0]));
  try {
    for (const ref of scan.samples) {
      const { image, mask, labels } = await decodeSample(ref);
      const [x] = processor.preprocess(image);
      const [, c, h, w] = [1, ...processor.inputShape];
      const out = await session.run({ [manifest.input.name]: new ort.Tensor('float32', x!, [1, c!, h!, w!]) });
      const masks = await processor.postprocess((out[manifest.output.name]!.data as Float32Array).slice(), undefined, { rows: image.rows, cols: image.columns });
      for (const m of masks) {
        const k = manifest.labels.indexOf(m.label);
        const truth = labels ? createMask(labels.rows, labels.cols, Uint8Array.from(labels.data, (v) => (v === k ? 1 : 0))) : mask;
        sums.set(m.label, sums.get(m.label)! + dice(m.mask, truth));
      }
    }
  } finally {
    await session.release();
  }
  const n = scan.samples.length;
  const labelDice = Object.fromEntries(scored.map((l) => [l, sums.get(l)! / n]));
  const values = Object.values(labelDice);
  return { images: n, labelDice, meanDice: values.reduce((a, b) => a + b, 0) / values.length };
}

if (import.meta.url === `file://${resolve(process.argv[1] ?? '')}`) {
  const { values } = parseArgs({ options: { model: { type: 'string' }, data: { type: 'string' }, layout: { type: 'string', default: 'labelmap' }, threads: { type: 'string', default: '2' }, json: { type: 'string' } } });
  if (!values.model || !values.data) {
    process.stderr.write('usage: node --import tsx trainer/evaluate.ts --model models/<name>/<version> --data <dir> [--layout labelmap|kaggle-multiclass|siim|pairs] [--json out.json]\n');
    process.exit(2);
  }
  evaluateModel(values.model, values.data, values.layout as Layout, Number(values.threads)).then(
    async (e) => {
      process.stdout.write(`${e.images} images: mean Dice ${e.meanDice.toFixed(4)} (${Object.entries(e.labelDice).map(([l, d]) => `${l} ${d.toFixed(4)}`).join(', ')})\n`);
      if (values.json) await writeFile(values.json, JSON.stringify(e, null, 2) + '\n');
    },
    (err: Error) => {
      process.stderr.write(`evaluate: ${err.message}\n`);
      process.exit(1);
    },
  );
}
