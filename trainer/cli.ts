/**
 * npm run train -- --data <dir> [options]. See --help. Errors print one line and exit non-zero;
 * --verbose adds the stack trace.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { join, relative, resolve } from 'node:path';
import pino from 'pino';
import { loadavg, cpus } from 'node:os';
import { DEFAULT_AUGMENT, type AugmentConfig } from './augment.ts';
import { DEFAULTS, validateConfig, type TrainConfig } from './config.ts';
import { CACHE_DTYPES, type CacheDtype } from './data/quantize.ts';
import type { Layout } from './data/types.ts';
import { IntensitySchema, type Intensity } from '../core/preprocess/spec.ts';
import { createConsoleObserver, formatDuration } from './progress.ts';

const positiveInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer.');
  return n;
};
const nonNegativeInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer.');
  return n;
};
const positiveNumber = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number.');
  return n;
};
const probability = (v: string): number => {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError('must be a number between 0 and 1.');
  return n;
};
const intList = (v: string): number[] => {
  if (v.trim() === '') return [];
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (xs.some((n) => !Number.isInteger(n) || n < 1)) throw new InvalidArgumentError('must be comma-separated positive integers.');
  return xs;
};
const lossWeights = (v: string): { bce: number; dice: number; focal: number } => {
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (xs.length !== 3 || xs.some((n) => !Number.isFinite(n) || n < 0)) throw new InvalidArgumentError('must be three non-negative numbers: bce,dice,focal (e.g. 3,1,4).');
  return { bce: xs[0]!, dice: xs[1]!, focal: xs[2]! };
};
const intensity = (v: string): Intensity => {
  const [kind, a, b] = v.split(':');
  const raw =
    kind === 'range' ? { kind, low: Number(a), high: Number(b) } : kind === 'window' ? { kind, center: Number(a), width: Number(b) } : kind === 'zscore' ? { kind, clip: a === undefined ? 3 : Number(a) } : { kind };
  const r = IntensitySchema.safeParse(raw);
  if (!r.success || (kind === 'range' && !(Number(b) > Number(a)))) throw new InvalidArgumentError('must be minmax, zscore[:CLIP], range:LOW:HIGH, window:CENTER:WIDTH or dicom-window.');
  return r.data;
};

const outputPrior = (v: string): number | 'auto' | 'none' => {
  if (v === 'auto' || v === 'none') return v;
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError('must be auto, none or a probability between 0 and 1.');
  return n;
};

export function buildProgram(): Command {
  const d = DEFAULTS;
  return new Command('train')
    .description('Train a UNet on DICOM (SIIM-ACR layout) or image/mask pairs, export ONNX + model.json into a model repository, and write a training report.')
    .requiredOption('--data <dir>', 'dataset root (siim: dicom-images-train/ + train-rle.csv; pairs: <stem>.png with <stem>_mask.png, recursive)')
    .addOption(new Option('--layout <layout>', 'dataset layout').choices(['siim', 'pairs']).default(d.layout))
    .option('--image-size <px>', 'model input size (square), a multiple of 2^depth', positiveInt, d.imageSize)
    .option('--epochs <n>', 'epochs to train (with --resume: the total, including epochs already done)', positiveInt, d.epochs)
    .option('--batch-size <n>', 'images per step', positiveInt, d.batchSize)
    .option('--fold <k>', 'validation fold (0-based)', nonNegativeInt, d.fold)
    .option('--folds <n>', 'stratified folds on has-mask', positiveInt, d.folds)
    .option('--lr <rate>', 'Adam base learning rate (seed recipe: 1e-4 for pretrained encoders)', positiveNumber, d.lr)
    .option('--milestones <epochs>', 'MultiStepLR milestones, comma-separated epochs', intList, d.milestones)
    .option('--gamma <factor>', 'MultiStepLR decay factor', positiveNumber, d.gamma)
    .option('--loss-weights <bce,dice,focal>', 'ComboLoss weights', lossWeights, d.loss)
    .option('--weight-decay <l2>', 'Adam L2 weight decay', Number, d.weightDecay)
    .option('--seed <n>', 'seed for folds, shuffling, augmentation and weight init', nonNegativeInt, d.seed)
    .addOption(new Option('--device <device>', 'execution provider (cuda falls back to cpu with a warning)').choices(['cpu', 'cuda']).default(d.device))
    .option('--device-id <n>', 'CUDA device index', nonNegativeInt)
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', positiveInt)
    .option('--out <dir>', 'model repository root; the model goes to <out>/<name>/<version>/', d.out)
    .option('--name <name>', 'model name (default: unet-<layout>)')
    .option('--version <version>', 'model version', d.version)
    .option('--depth <n>', 'UNet depth (number of 2x poolings)', positiveInt, d.depth)
    .option('--base-channels <n>', 'channels of the first UNet level (doubling per level)', positiveInt, d.baseChannels)
    .addOption(new Option('--upsample <mode>', 'decoder upsampling').choices(['transpose', 'nearest', 'bilinear']).default(d.upsample))
    .option('--intensity <mapping>', 'intensity mapping to 0..1: minmax | zscore[:CLIP] | range:LOW:HIGH | window:C:W | dicom-window', intensity, d.intensity)
    .addOption(new Option('--resize <method>', 'resize method to model resolution').choices(['nearest', 'bilinear', 'bicubic', 'lanczos3']).default(d.resize))
    .addOption(new Option('--normalize <mode>', "dataset mean/std normalisation ('dataset' computes it on the training fold)").choices(['none', 'dataset']).default(d.normalize))
    .option('--output-prior <p>', "initial output bias as a foreground probability: auto (training fold's foreground fraction), none, or a number", outputPrior, d.outputPrior)
    .option('--no-augment', 'disable augmentation (default: hflip 0.5, rotate +-10, shift 6%, scale 10%, brightness/contrast 0.1, gamma 0.2)')
    .option('--rotate <deg>', 'max rotation in degrees', Number, DEFAULT_AUGMENT.rotate)
    .option('--elastic <alpha>', 'enable elastic deformation with this displacement (pixels)', positiveNumber)
    .option('--limit <n>', 'use only N images (seeded subset), for quick runs', positiveInt)
    .option('--resume <checkpoint>', 'continue a run from its last.ckpt (same options; --epochs may grow)')
    .option('--cache <dir>', 'preprocessed tensor cache', d.cacheDir)
    .addOption(new Option('--cache-dtype <dtype>', 'cache storage precision').choices([...CACHE_DTYPES]).default(d.cacheDtype))
    .option('--work <dir>', `checkpoint directory (default: ${d.runsDir}/<name>-<version>-fold<k>)`)
    .option('--threshold <p>', 'probability threshold for masks', probability, d.threshold)
    .option('--min-area <px>', 'report masks smaller than this (original pixels) as empty', nonNegativeInt, d.minArea)
    .option('--label <name>', 'output label (default: pneumothorax for siim, foreground for pairs)')
    .option('--description <text>', 'model description for model.json')
    .option('--intended-use <text>', 'intended-use statement for model.json', 'Research and demonstration only; not a medical device.')
    .option('--no-val-original', 'score original-resolution Dice only for the final model, not every epoch')
    .option('--log-level <level>', 'structured log level (pino) for engine messages on stderr', 'warn')
    .option('--verbose', 'print stack traces on errors')
    .allowExcessArguments(false);
}

type Opts = Record<string, unknown>;

export function configFromOptions(o: Opts): TrainConfig {
  const layout = o.layout as Layout;
  const name = (o.name as string | undefined) ?? `unet-${layout}`;
  const version = o.version as string;
  const fold = o.fold as number;
  const augment: AugmentConfig | null =
    o.augment === false ? null : { ...DEFAULT_AUGMENT, rotate: o.rotate as number, ...(o.elastic ? { elastic: { p: 0.5, alpha: o.elastic as number, grid: 5 } } : {}) };
  return {
    data: o.data as string,
    layout,
    height: o.imageSize as number,
    width: o.imageSize as number,
    epochs: o.epochs as number,
    batchSize: o.batchSize as number,
    fold,
    folds: o.folds as number,
    lr: o.lr as number,
    milestones: o.milestones as number[],
    gamma: o.gamma as number,
    seed: o.seed as number,
    device: o.device as 'cpu' | 'cuda',
    deviceId: o.deviceId as number | undefined,
    out: o.out as string,
    name,
    version,
    depth: o.depth as number,
    baseChannels: o.baseChannels as number,
    upsample: o.upsample as TrainConfig['upsample'],
    loss: o.lossWeights as TrainConfig['loss'],
    weightDecay: o.weightDecay as number,
    intensity: o.intensity as Intensity,
    resize: o.resize as TrainConfig['resize'],
    normalize: o.normalize as TrainConfig['normalize'],
    outputPrior: o.outputPrior as TrainConfig['outputPrior'],
    augment,
    limit: o.limit as number | undefined,
    threads: o.threads as number | undefined,
    resume: o.resume as string | undefined,
    cacheDir: o.cache as string,
    cacheDtype: o.cacheDtype as CacheDtype,
    workDir: (o.work as string | undefined) ?? join(DEFAULTS.runsDir, `${name}-${version}-fold${fold}`),
    decodeConcurrency: DEFAULTS.decodeConcurrency,
    prefetch: DEFAULTS.prefetch,
    threshold: o.threshold as number,
    minArea: o.minArea as number,
    labels: [(o.label as string | undefined) ?? (layout === 'siim' ? 'pneumothorax' : 'foreground')],
    description: (o.description as string | undefined) ?? '',
    intendedUse: o.intendedUse as string,
    validateOriginalEachEpoch: o.valOriginal !== false,
    overlayExamples: DEFAULTS.overlayExamples,
    parityTolerance: DEFAULTS.parityTolerance,
    paritySamples: DEFAULTS.paritySamples,
  };
}

const rel = (p: string): string => {
  const r = relative(process.cwd(), p);
  return r.startsWith('..') ? p : r;
};

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.parse(argv, { from: 'user' });
  const o = program.opts();
  const cfg = configFromOptions(o);
  try {
    validateConfig(cfg);
  } catch (e) {
    process.stderr.write(`train: ${oneLine(e as Error)}\n`);
    return 2;
  }
  const obs = createConsoleObserver();
  const logger = pino({ level: o.logLevel as string, base: undefined }, pino.destination(2));
  obs.info?.(`train: ${cfg.name} v${cfg.version} | ${cpus().length} CPU(s), load average ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  try {
    // Loaded after argument parsing so --help and argument errors never pay for onnxruntime.
    const { train } = await import('./train.ts');
    const r = await train(cfg, obs, { logger });
    obs.stop();
    const best = r.history.find((h) => h.epoch === r.bestEpoch);
    const lines = [
      '',
      `done in ${formatDuration(r.seconds)} on ${r.executionProvider.toUpperCase()} (${r.history.length} epochs, ${r.counts.train} train / ${r.counts.val} validation images)`,
      `best epoch ${r.bestEpoch}: validation Dice ${r.bestDice.toFixed(4)} at ${cfg.height}x${cfg.width}, ${r.bestDiceOriginal.toFixed(4)} at original resolution${best ? ` (train loss ${best.trainLoss.toFixed(4)})` : ''}`,
      `parity: max |p_onnx - p_session| = ${r.parity.maxAbsDiff.toExponential(2)} over ${r.parity.images} validation images (tolerance ${r.parity.tolerance.toExponential(0)}): OK`,
      `model:       ${rel(r.files.onnx)}`,
      `manifest:    ${rel(r.files.manifest)}`,
      `report:      ${rel(r.files.curves)}, ${rel(r.files.overlays)}, ${rel(r.files.log)}`,
      `checkpoints: ${rel(r.files.lastCheckpoint)} (resume with --resume), ${rel(r.files.bestCheckpoint)}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  } catch (e) {
    obs.stop();
    const err = e as Error;
    process.stderr.write(`train: ${oneLine(err)}\n`);
    if (o.verbose && err.stack) process.stderr.write(err.stack + '\n');
    return 1;
  }
}

function oneLine(e: Error): string {
  const msg = (e?.message ?? String(e)).replace(/\s*\n\s*/g, ' ').trim();
  return msg || e?.name || 'unknown error';
}

if (import.meta.url === `file://${resolve(process.argv[1] ?? '')}`) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`train: ${oneLine(e)}\n`);
      process.exit(1);
    },
  );
}
