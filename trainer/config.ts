/**
 * Everything a training run is made of, declared once: `TrainConfigSchema` gives each setting its
 * type, bounds, default and help text, and its `OptionMeta` says whether it has a flag, whether a
 * resumed run must match it and whether it goes into model.json. The CLI's options, `TrainConfig`,
 * `DEFAULTS`, `resumeFingerprint` and `manifestTraining` are all derived from it; a new option is one
 * entry here (plus its use).
 *
 * The recipe follows seed 004 (SIIM-ACR): ComboLoss bce 3 / dice 1 / focal 4, Adam, MultiStepLR
 * milestones [3,5,6,7,8,9,10,11,13,15] gamma 0.75, batch 8, stratified 5-fold on has-mask, flip +
 * rotate 10. Defaults that differ from the seed, chosen so that the 400-image synthetic SIIM set
 * reaches held-out Dice >= 0.90 within 30 minutes on 2 shared CPU cores (see README, "Recipe"):
 *  - lr 2e-3, not 1e-4: the seed fine-tunes an ImageNet-pretrained encoder; we train from scratch.
 *  - 24 epochs: the seed's milestones end at 15; epochs 16..24 run at 0.056 x lr (fine-tuning).
 *  - base 8 channels at depth 4: 4x fewer FLOPs than base 16, which fit only ~16 epochs in 30 min
 *    under load and generalised worse on this set (0.84 vs 0.93 validation Dice).
 *  - output bias initialised to the foreground prior (RetinaNet), without which nothing but
 *    background was learnt in 14 epochs.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { InvalidArgumentError, Option } from 'commander';
import { intensity, positiveIntList, namedNumbers, type CliMeta } from '../core/cli/args.ts';
import { IntensitySchema, ResizeMethodSchema, type Intensity } from '../core/preprocess/spec.ts';
import { DEFAULT_MIN_AREA, DEFAULT_THRESHOLD, MinAreaSchema, ThresholdSchema } from '../core/segmentation/postprocessing.ts';
import { DEFAULT_AUGMENT, type AugmentConfig } from './augment.ts';
import { CACHE_DTYPES } from './data/quantize.ts';
import { isMulticlassLayout, type Layout } from './data/types.ts';
import { DEFAULT_LOSS_WEIGHTS } from './model/loss.ts';
import { LOSS_SETS, lossSet, termWeightsError, type TermValues } from './model/loss-set.ts';
import { validateUNetConfig } from './model/unet.ts';
import { SIIM_GAMMA, SIIM_MILESTONES, validateSchedule } from './schedule.ts';

export interface OptionMeta {
  /** The command-line flag; settings without one keep their default on the command line. */
  cli?: CliMeta;
  /** A resumed run must have the same value (it changes what an epoch computes). */
  resume?: true;
  /** The key under which model.json's `training` block records it. */
  manifest?: string;
}

const OPTIONS = new WeakMap<z.ZodType, OptionMeta>();
/** A setting: its schema (type, bounds, default), help text, and what else it is part of. */
function setting<S extends z.ZodType>(schema: S, description: string, meta: OptionMeta = {}): S {
  const described = schema.describe(description);
  OPTIONS.set(described, meta);
  return described;
}
const flag = (f: string, more: Omit<CliMeta, 'flag'> = {}): CliMeta => ({ flag: f, ...more });

const intAtLeast = (lo: number) => z.number().refine((v) => Number.isInteger(v) && v >= lo, { error: (i) => `must be an integer >= ${lo}, got ${String(i.input)}` });
const positive = () => z.number().refine((v) => Number.isFinite(v) && v > 0, { error: (i) => `must be a positive number, got ${String(i.input)}` });
const fileName = (re: RegExp) => z.string().refine((v) => re.test(v), { error: (i) => `must be letters, digits, . _ - (got ${JSON.stringify(i.input)})` });

/**
 * Loss weights by term name, or (the command line) the numbers in term order; the layout decides
 * the terms: bce,dice,focal for single-label layouts, ce,dice,focal for the multi-class ones.
 */
const LossWeightsSchema = z.union([z.array(z.number()), z.record(z.string(), z.number())]);
const TERMS_HELP = `${LOSS_SETS.sigmoid.names.join(',')} (multi-class layouts: ${LOSS_SETS.softmax.names.join(',')})`;
const lossWeightsArg = (v: string): number[] => {
  const xs = v.split(',').map((x) => (x.trim() === '' ? Number.NaN : Number(x)));
  if (xs.length !== LOSS_SETS.sigmoid.names.length || xs.some((n) => !Number.isFinite(n) || n < 0)) {
    throw new InvalidArgumentError(`must be ${LOSS_SETS.sigmoid.names.length} non-negative numbers: ${TERMS_HELP}.`);
  }
  return xs;
};
const LAYOUTS = ['siim', 'pairs', 'labelmap', 'kaggle-multiclass'] as const satisfies readonly Layout[];
const OutputPriorSchema = z.union([z.literal('auto'), z.literal('none'), z.number().refine((p) => p > 0 && p < 1, { error: (i) => `must be auto, none or a probability in (0, 1), got ${String(i.input)}` })]);
/** Augmentation as the augment module defines it; null turns it off. */
const AugmentSchema = z.custom<AugmentConfig>((v) => typeof v === 'object' && v !== null && 'hflip' in v, 'must be an augmentation config');

const RUNS_DIR = '.cache/unet-train/runs';

const parseOutputPrior = (v: string): number | 'auto' | 'none' => {
  if (v === 'auto' || v === 'none') return v;
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError('must be auto, none or a probability between 0 and 1.');
  return n;
};

/** Every setting of a run, in --help order. */
export const TrainFields = {
  data: setting(
    z.string().min(1),
    'dataset root (siim: dicom-images-train/ + train-rle.csv; pairs: <stem>.png with <stem>_mask.png, recursive; labelmap: images/ + masks/<stem>_mask.png + classes.json; kaggle-multiclass: train_images/ + train.csv + classes.json)',
    { cli: flag('--data <dir>') },
  ),
  layout: setting(z.enum(LAYOUTS).default('siim'), 'dataset layout (labelmap and kaggle-multiclass train a softmax multi-class model)', { cli: flag('--layout <layout>'), resume: true }),
  classes: setting(z.array(z.string().min(1)).min(2).optional(), 'multi-class layouts: class names, index 0 = background (default: <data>/classes.json, read when the run starts)', { resume: true }),
  height: setting(intAtLeast(1).default(256), 'model input height (--image-size)', { resume: true }),
  width: setting(intAtLeast(1).default(256), 'model input width (--image-size)', { resume: true }),
  epochs: setting(intAtLeast(1).default(24), 'epochs to train (with --resume: the total, including epochs already done)', { cli: flag('--epochs <n>') }),
  batchSize: setting(intAtLeast(1).default(8), 'images per step', { cli: flag('--batch-size <n>'), resume: true, manifest: 'batchSize' }),
  fold: setting(intAtLeast(0).default(0), 'validation fold (0-based)', { cli: flag('--fold <k>'), resume: true, manifest: 'fold' }),
  folds: setting(intAtLeast(2).default(5), 'stratified folds on has-mask', { cli: flag('--folds <n>'), resume: true, manifest: 'folds' }),
  lr: setting(positive().default(2e-3), 'Adam base learning rate (seed recipe: 1e-4 for pretrained encoders)', { cli: flag('--lr <rate>'), resume: true }),
  milestones: setting(z.array(intAtLeast(1)).default([...SIIM_MILESTONES]), 'MultiStepLR milestones, comma-separated epochs', { cli: flag('--milestones <epochs>', { parse: positiveIntList, defaultText: SIIM_MILESTONES.join(',') }), resume: true }),
  gamma: setting(positive().default(SIIM_GAMMA), 'MultiStepLR decay factor', { cli: flag('--gamma <factor>'), resume: true }),
  seed: setting(intAtLeast(0).default(42), 'seed for folds, shuffling, augmentation and weight init', { cli: flag('--seed <n>'), resume: true, manifest: 'seed' }),
  // The default depends on the layout, so the schema has none and --help would print none: it is in the text.
  loss: setting(LossWeightsSchema.optional(), `loss term weights: ${TERMS_HELP} (default: ${Object.values(LOSS_SETS.sigmoid.defaults).join(',')}; multi-class ${Object.values(LOSS_SETS.softmax.defaults).join(',')})`, {
    cli: flag('--loss-weights <w1,w2,w3>', { parse: lossWeightsArg }),
    resume: true,
    manifest: 'lossWeights',
  }),
  weightDecay: setting(z.number().min(0).default(0), 'Adam L2 weight decay', { cli: flag('--weight-decay <l2>'), resume: true }),
  device: setting(z.enum(['cpu', 'cuda']).default('cpu'), 'execution provider (cuda falls back to cpu with a warning)', { cli: flag('--device <device>') }),
  deviceId: setting(intAtLeast(0).optional(), 'CUDA device index', { cli: flag('--device-id <n>') }),
  threads: setting(intAtLeast(1).optional(), 'onnxruntime intra-op threads (default: all cores)', { cli: flag('--threads <n>') }),
  out: setting(z.string().default('models'), 'model repository root; the model goes to <out>/<name>/<version>/', { cli: flag('--out <dir>') }),
  name: setting(fileName(/^[a-z0-9][a-z0-9._-]*$/i).optional(), 'model name (default: unet-<layout>)', { cli: flag('--name <name>') }),
  version: setting(fileName(/^[0-9A-Za-z][0-9A-Za-z._-]*$/).default('1'), 'model version', { cli: flag('--version <version>') }),
  force: setting(z.boolean().default(false), 'replace <out>/<name>/<version> if it exists (refused otherwise: the service may be serving it)', { cli: flag('--force') }),
  depth: setting(intAtLeast(1).default(4), 'UNet depth (number of 2x poolings)', { cli: flag('--depth <n>'), resume: true }),
  baseChannels: setting(intAtLeast(1).default(8), 'channels of the first UNet level (doubling per level)', { cli: flag('--base-channels <n>'), resume: true }),
  upsample: setting(z.enum(['transpose', 'nearest', 'bilinear']).default('transpose'), 'decoder upsampling', { cli: flag('--upsample <mode>'), resume: true }),
  intensity: setting(IntensitySchema.default({ kind: 'minmax' }), 'intensity mapping to 0..1: minmax | zscore[:CLIP] | range:LOW:HIGH | window:C:W | dicom-window', {
    cli: flag('--intensity <mapping>', { parse: intensity, defaultText: 'minmax' }),
    resume: true,
  }),
  resize: setting(ResizeMethodSchema.default('bilinear'), 'resize method to model resolution', { cli: flag('--resize <method>'), resume: true }),
  normalize: setting(z.enum(['none', 'dataset']).default('none'), "dataset mean/std normalisation ('dataset' computes it on the training fold)", { cli: flag('--normalize <mode>'), resume: true }),
  outputPrior: setting(OutputPriorSchema.default('auto'), "initial output bias as a foreground probability: auto (training fold's foreground fraction), none, or a number", {
    cli: flag('--output-prior <p>', { parse: parseOutputPrior }),
    resume: true,
  }),
  augment: setting(AugmentSchema.nullable().default(DEFAULT_AUGMENT), 'augmentation (null: none); on the command line --no-augment, --rotate, --elastic', { resume: true }),
  limit: setting(intAtLeast(2).optional(), 'use only N images (seeded subset), for quick runs', { cli: flag('--limit <n>'), resume: true }),
  resume: setting(z.string().optional(), 'continue a run from its last.ckpt (same options; --epochs may grow)', { cli: flag('--resume <checkpoint>') }),
  cacheDir: setting(z.string().default('.cache/unet-train/tensors'), 'preprocessed tensor cache (shared between runs; keyed by file and spec)', { cli: flag('--cache <dir>') }),
  cacheDtype: setting(z.enum(CACHE_DTYPES).default('uint16'), 'cache storage precision', { cli: flag('--cache-dtype <dtype>'), resume: true }),
  workDir: setting(z.string().optional(), `checkpoint directory (default: ${RUNS_DIR}/<name>-<version>-fold<k>)`, { cli: flag('--work <dir>') }),
  decodeConcurrency: setting(intAtLeast(1).default(2), 'decode workers while filling the cache'),
  prefetch: setting(intAtLeast(0).default(2), 'batches read ahead'),
  threshold: setting(ThresholdSchema.default(DEFAULT_THRESHOLD), 'probability threshold for masks', { cli: flag('--threshold <p>') }),
  minArea: setting(MinAreaSchema.default(DEFAULT_MIN_AREA), 'report masks smaller than this (original pixels) as empty', { cli: flag('--min-area <px>') }),
  labels: setting(z.array(z.string().min(1)).min(1).optional(), 'output label (default: pneumothorax for siim, foreground for pairs; multi-class layouts: the classes)', { cli: flag('--label <name>', { parse: (v) => [v] }) }),
  description: setting(z.string().default(''), 'model description for model.json', { cli: flag('--description <text>') }),
  intendedUse: setting(z.string().default('Research and demonstration only; not a medical device.'), 'intended-use statement for model.json', { cli: flag('--intended-use <text>') }),
  validateOriginalEachEpoch: setting(z.boolean().default(true), 'score original-resolution Dice only for the final model, not every epoch', { cli: flag('--no-val-original') }),
  overlayExamples: setting(intAtLeast(0).default(8), 'validation images in validation-overlays.png'),
  parityTolerance: setting(positive().default(1e-4), 'max |p_onnx - p_session| the exported model may differ by'),
  paritySamples: setting(intAtLeast(1).default(8), 'validation images in the parity check'),
};

/** The flag (or key) an option is known by in messages. */
export function optionLabel(key: string): string {
  const cli = OPTIONS.get(TrainFields[key as keyof typeof TrainFields])?.cli;
  if (cli) return new Option(cli.flag).long ?? key;
  return key === 'height' || key === 'width' ? '--image-size' : key;
}

export const cliOf = (key: string): CliMeta | undefined => OPTIONS.get(TrainFields[key as keyof typeof TrainFields])?.cli;

export const TrainConfigSchema = z
  .object(TrainFields)
  .transform((c) => {
    const name = c.name ?? `unet-${c.layout}`;
    const multiclass = isMulticlassLayout(c.layout);
    const set = lossSet(multiclass);
    // Numbers from the command line take the layout's term names in order (a wrong count is reported by the cross-field check).
    const loss: TermValues = c.loss === undefined ? { ...set.defaults } : Array.isArray(c.loss) ? Object.fromEntries(c.loss.map((v, i) => [set.names[i] ?? `#${i + 1}`, v])) : c.loss;
    return {
      ...c,
      name,
      loss,
      // Multi-class: one label per class (background first), known once classes.json is read (resolveClasses).
      labels: multiclass ? (c.classes ?? []) : (c.labels ?? [c.layout === 'siim' ? 'pneumothorax' : 'foreground']),
      labelsGiven: c.labels,
      workDir: c.workDir ?? join(RUNS_DIR, `${name}-${c.version}-fold${c.fold}`),
    };
  })
  .superRefine((c, ctx) => {
    const e = crossFieldError(c);
    if (e) ctx.addIssue({ code: 'custom', message: e });
  })
  .transform(({ labelsGiven: _, ...c }) => c);

export type TrainConfig = z.output<typeof TrainConfigSchema>;

/** Multi-class layouts train a softmax model (classes from classes.json, background = index 0). */
export const isMulticlass = (c: Pick<TrainConfig, 'layout'>): boolean => isMulticlassLayout(c.layout);
/** What a caller may leave out: everything with a default. */
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;

/** Rules between settings; undefined when they hold. */
function crossFieldError(c: Omit<TrainConfig, 'labels'> & { labels: string[]; labelsGiven?: string[] }): string | undefined {
  if (c.fold >= c.folds) return `--fold must be in 0..${c.folds - 1}, got ${c.fold}`;
  const s = validateSchedule({ lr: c.lr, milestones: c.milestones, gamma: c.gamma });
  if (s) return s;
  const multiclass = isMulticlassLayout(c.layout);
  const lossError = termWeightsError(lossSet(multiclass), c.loss);
  if (lossError) return `--loss-weights: ${lossError}`;
  if (multiclass && c.labelsGiven !== undefined && JSON.stringify(c.labelsGiven) !== JSON.stringify(c.classes)) {
    return `--label is for single-label layouts; the ${c.layout} layout takes its class names from classes.json`;
  }
  if (!multiclass && c.classes !== undefined) return `classes are for the multi-class layouts (labelmap, kaggle-multiclass), not ${c.layout}`;
  const m = 2 ** c.depth;
  if (c.depth <= 8 && (c.height % m !== 0 || c.width % m !== 0)) {
    return `--image-size ${c.height === c.width ? c.height : `${c.height}x${c.width}`} must be a multiple of 2^depth = ${m} (--depth ${c.depth})`;
  }
  try {
    validateUNetConfig({ depth: c.depth, baseChannels: c.baseChannels, inChannels: 1, classes: Math.max(1, c.labels.length), upsample: c.upsample }, c.height, c.width);
  } catch (e) {
    return (e as Error).message.replace('unet.depth', '--depth').replace('unet.baseChannels', '--base-channels');
  }
  return undefined;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The config with defaults filled in; throws ConfigError with a one-line message naming the option. */
export function parseConfig(input: unknown): TrainConfig {
  const r = TrainConfigSchema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const key = issue.path[0];
  if (key === undefined) throw new ConfigError(issue.message);
  // Our own messages read on from the flag ('--epochs must be ...'); zod's start a sentence.
  throw new ConfigError(`${optionLabel(String(key))}${/^[a-z]/.test(issue.message) ? ' ' : ': '}${issue.message}`);
}

/** Throws ConfigError with a one-line message naming the option. */
export function validateConfig(c: TrainConfig): void {
  parseConfig(c);
}

const schemaDefaults = TrainConfigSchema.parse({ data: '.' });
/** Every default (with a placeholder `data`), plus the two the CLI composes (`--image-size`, the run directory). */
export const DEFAULTS = { ...schemaDefaults, loss: DEFAULT_LOSS_WEIGHTS, imageSize: schemaDefaults.height, runsDir: RUNS_DIR };

/**
 * A multi-class config with its classes: read from <data>/classes.json unless the config names them
 * (a resumed or programmatic run). Single-label configs are returned as they are.
 */
export async function resolveClasses(c: TrainConfig, read: (root: string) => Promise<string[]>): Promise<TrainConfig> {
  if (!isMulticlass(c) || c.classes) return c;
  return parseConfig({ ...c, classes: await read(c.data), labels: undefined });
}

const keysWith = (pick: (m: OptionMeta) => unknown): (keyof typeof TrainFields)[] =>
  (Object.keys(TrainFields) as (keyof typeof TrainFields)[]).filter((k) => pick(OPTIONS.get(TrainFields[k]) ?? {}));

/**
 * The options a resumed run must share with the run it continues (everything that changes what
 * an epoch computes). `epochs` may grow; paths may move.
 */
export function resumeFingerprint(c: TrainConfig): Record<string, unknown> {
  return Object.fromEntries(keysWith((m) => m.resume).map((k) => [k, c[k] ?? null]));
}

/** The settings model.json's `training` block records, under their manifest names. */
export function manifestTraining(c: TrainConfig): Record<string, unknown> {
  return Object.fromEntries(keysWith((m) => m.manifest).map((k) => [OPTIONS.get(TrainFields[k])!.manifest!, c[k]]));
}
