/**
 * `npm run synth -- <layout> [options]`: writes a synthetic dataset.
 *   siim   SIIM-ACR pneumothorax layout (DICOM + train-rle.csv)
 *   pairs  Kaggle LGG brain MRI layout (PNG image + _mask.png)
 *   multiclass  chest phantom with lung / heart / pneumothorax classes: label-map PNG masks or a
 *          Kaggle multi-class train.csv (ImageId,ClassId,EncodedPixels) beside a DICOM tree
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { fraction, int } from '../core/cli/args.ts';
import { TS, isKnownTransferSyntax } from '../core/dicom/transfer-syntax.ts';
import { generateMulticlassDataset, MULTICLASS_CLASSES } from './multiclass.ts';
import { generatePairsDataset } from './pairs.ts';
import { generateSiimDataset } from './siim.ts';

/** Short names accepted wherever a transfer syntax UID is. */
const SYNTAX_ALIASES: Record<string, string> = {
  'implicit-le': TS.ImplicitVRLittleEndian,
  'explicit-le': TS.ExplicitVRLittleEndian,
  'explicit-be': TS.ExplicitVRBigEndian,
  deflated: TS.DeflatedExplicitVRLittleEndian,
  'jpeg-baseline': TS.JPEGBaseline,
  'jpeg-lossless': TS.JPEGLossless,
  'jpeg-lossless-sv1': TS.JPEGLosslessSV1,
  'jpeg-ls': TS.JPEGLSLossless,
  'jpeg-ls-near': TS.JPEGLSNearLossless,
  rle: TS.RLELossless,
  'j2k-lossless': TS.JPEG2000Lossless,
  j2k: TS.JPEG2000,
};

function syntax(value: string): string {
  const uid = SYNTAX_ALIASES[value] ?? value;
  if (!isKnownTransferSyntax(uid)) {
    throw new InvalidArgumentError(`unknown transfer syntax "${value}"; give a UID or one of ${Object.keys(SYNTAX_ALIASES).join(', ')}`);
  }
  return uid;
}

function syntaxList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(syntax);
}

function progressBar(label: string): { update: (done: number, total: number) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar({ format: `${label} [{bar}] {value}/{total} {eta_formatted}`, stream: process.stderr }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update: (done, total) => {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.update(done);
    },
    stop: () => started && bar.stop(),
  };
}

const program = new Command();
program.name('synth').description('Write synthetic medical-image segmentation datasets (test and demo data; no real patient data).').showHelpAfterError();

program
  .command('siim')
  .description('SIIM-ACR pneumothorax layout: dicom-images-train/<Study>/<Series>/<SOP>.dcm + train-rle.csv')
  .requiredOption('-o, --out <dir>', 'output directory')
  .option('-n, --count <n>', 'training images', int(0, 500000), 100)
  .option('--test-count <n>', 'images in dicom-images-test (no masks)', int(0, 499999), 0)
  .option('-s, --size <px>', 'image side in pixels', int(32, 8192), 1024)
  .option('--seed <n>', 'random seed (same seed, same bytes)', int(0, 2 ** 32 - 1), 1)
  .option('--negative-fraction <f>', 'fraction of images without a lesion', fraction, 0.4)
  .option('--second-lesion <p>', 'probability that a positive image has a second, separate lesion', fraction, 0.3)
  .option('--min-lesion <f>', 'smallest lesion, as a fraction of the image area', fraction, 0.004)
  .option('--max-lesion <f>', 'largest lesion, as a fraction of the image area', fraction, 0.045)
  .option('--transfer-syntax <uid|name>', 'transfer syntax of the main layout', syntax, TS.JPEGBaseline)
  .option('--syntaxes <list>', 'comma-separated extra encodings of every training image, written under syntaxes/<uid>/', syntaxList, [] as string[])
  .option('--jpeg-quality <q>', 'JPEG quality (1-100)', int(1, 100), 95)
  .addOption(new Option('--modality <m>', 'DICOM modality').choices(['CR', 'DX']).default('CR'))
  .action(async (o) => {
    const bar = progressBar('siim');
    const t0 = performance.now();
    const res = await generateSiimDataset({
      outDir: o.out,
      count: o.count,
      testCount: o.testCount,
      size: o.size,
      seed: o.seed,
      negativeFraction: o.negativeFraction,
      secondLesionProbability: o.secondLesion,
      minLesionFraction: o.minLesion,
      maxLesionFraction: o.maxLesion,
      transferSyntaxUid: o.transferSyntax,
      syntaxes: o.syntaxes,
      jpegQuality: o.jpegQuality,
      modality: o.modality,
      onProgress: bar.update,
    });
    bar.stop();
    const train = res.images.filter((r) => r.split === 'train');
    const positives = train.filter((r) => r.components > 0).length;
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `wrote ${train.length} train (${positives} with lesions, ${train.length - positives} without) and ${res.images.length - train.length} test images of ${o.size}x${o.size} to ${res.outDir} in ${seconds.toFixed(1)} s; masks in ${res.csvPath}`,
    );
  });

program
  .command('pairs')
  .description('Kaggle LGG brain MRI layout: <case>/<case>_<n>.png + <case>_<n>_mask.png')
  .requiredOption('-o, --out <dir>', 'output directory')
  .option('-c, --cases <n>', 'number of cases (heads)', int(0, 9999), 10)
  .option('--slices <n>', 'slices per case', int(1, 1000), 20)
  .option('-s, --size <px>', 'image side in pixels', int(32, 8192), 256)
  .option('--seed <n>', 'random seed (same seed, same bytes)', int(0, 2 ** 32 - 1), 1)
  .addOption(new Option('--bit-depth <bits>', 'image PNG bit depth (16: 12-bit values 0..4095)').choices(['8', '16']).default('8'))
  .option('--tumour-probability <p>', 'probability that a case has a tumour', fraction, 1)
  .action(async (o) => {
    const bar = progressBar('pairs');
    const t0 = performance.now();
    const res = await generatePairsDataset({
      outDir: o.out,
      cases: o.cases,
      slicesPerCase: o.slices,
      size: o.size,
      seed: o.seed,
      bitDepth: o.bitDepth === '16' ? 16 : 8,
      tumourProbability: o.tumourProbability,
      onProgress: bar.update,
    });
    bar.stop();
    const withTumour = res.pairs.filter((p) => p.tumourPixels > 0).length;
    const seconds = (performance.now() - t0) / 1000;
    console.log(`wrote ${res.pairs.length} image/mask pairs (${withTumour} with tumour) in ${o.cases} cases of ${o.size}x${o.size} to ${res.outDir} in ${seconds.toFixed(1)} s`);
  });

program
  .command('multiclass')
  .description(`multi-class chest layout (classes ${MULTICLASS_CLASSES.map((c, i) => `${i} ${c}`).join(', ')}): labelmap = images/<stem>.dcm + masks/<stem>_mask.png (pixel = class index) + classes.json; csv = train_images/<Study>/<Series>/<SOP>.dcm + train.csv (ImageId,ClassId,EncodedPixels) + classes.json`)
  .requiredOption('-o, --out <dir>', 'output directory')
  .addOption(new Option('--layout <layout>', 'label-map PNG masks, or Kaggle multi-class CSV beside a DICOM tree').choices(['labelmap', 'csv']).default('labelmap'))
  .option('-n, --count <n>', 'images', int(0, 99999), 100)
  .option('-s, --size <px>', 'image side in pixels', int(32, 8192), 256)
  .option('--seed <n>', 'random seed (same seed, same bytes)', int(0, 2 ** 32 - 1), 1)
  .addOption(new Option('--image-format <f>', 'labelmap layout: DICOM or 8-bit PNG images').choices(['dcm', 'png']).default('dcm'))
  .option('--negative-fraction <f>', 'fraction of images without a pneumothorax', fraction, 0.4)
  .option('--transfer-syntax <uid|name>', 'transfer syntax of the DICOM files', syntax, TS.JPEGBaseline)
  .option('--jpeg-quality <q>', 'JPEG quality (1-100)', int(1, 100), 95)
  .action(async (o) => {
    if (o.layout === 'csv' && o.imageFormat === 'png') throw new InvalidArgumentError('--image-format png is for --layout labelmap (the csv layout is a DICOM tree)');
    const bar = progressBar('multiclass');
    const t0 = performance.now();
    const res = await generateMulticlassDataset({
      outDir: o.out,
      layout: o.layout,
      count: o.count,
      size: o.size,
      seed: o.seed,
      imageFormat: o.imageFormat,
      negativeFraction: o.negativeFraction,
      transferSyntaxUid: o.transferSyntax,
      jpegQuality: o.jpegQuality,
      onProgress: bar.update,
    });
    bar.stop();
    const lesions = res.images.filter((r) => r.classPixels[3]! > 0).length;
    const seconds = (performance.now() - t0) / 1000;
    const where = res.csvPath ? `masks in ${res.csvPath}` : `masks in ${res.outDir}/masks`;
    console.log(`wrote ${res.images.length} ${o.layout} images of ${o.size}x${o.size} (${lesions} with pneumothorax) to ${res.outDir} in ${seconds.toFixed(1)} s; ${where}; classes in ${res.classesPath}`);
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  console.error(`synth: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
