/**
 * npm run train -- --data <dir> [options]. See --help. Errors print one line and exit non-zero;
 * --verbose adds the stack trace.
 */
import { Command } from 'commander';
import { relative, resolve } from 'node:path';
import pino from 'pino';
import { z } from 'zod';
import { loadavg, cpus } from 'node:os';
import { finiteNumber, optionValues, positiveNumber, schemaOptions, size, type CliMeta } from '../core/cli/args.ts';
import { DEFAULT_AUGMENT } from './augment.ts';
import { cliOf, ConfigError, DEFAULTS, parseConfig, TrainFields, type TrainConfig } from './config.ts';
import { formatTerms as formatLosses } from './model/loss-set.ts';
import { createConsoleObserver, formatDuration } from './progress.ts';

/**
 * Flags of the command line only: the ones that compose a config setting from parts (the size,
 * augmentation) and the ones about this process (logging). Every other flag is a setting of
 * trainer/config.ts.
 */
const CliFields = {
  imageSize: z.object({ height: z.number(), width: z.number() }).default({ height: DEFAULTS.height, width: DEFAULTS.width }).describe('model input size, N (square) or HxW; a multiple of 2^depth'),
  augment: z.boolean().default(true).describe('disable augmentation (default: hflip 0.5, rotate +-10, shift 6%, scale 10%, brightness/contrast 0.1, gamma 0.2)'),
  rotate: z.number().default(DEFAULT_AUGMENT.rotate).describe('max rotation in degrees'),
  elastic: z.number().positive().optional().describe('enable elastic deformation with this displacement (pixels)'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('warn').describe('structured log level (pino) for engine messages on stderr'),
  verbose: z.boolean().default(false).describe('print stack traces on errors'),
};
const CLI_FLAGS: Record<keyof typeof CliFields, CliMeta> = {
  imageSize: { flag: '--image-size <px>', parse: size, defaultText: String(DEFAULTS.height) },
  augment: { flag: '--no-augment' },
  rotate: { flag: '--rotate <deg>', parse: finiteNumber },
  elastic: { flag: '--elastic <alpha>', parse: positiveNumber },
  logLevel: { flag: '--log-level <level>' },
  verbose: { flag: '--verbose' },
};
const cliOnly = (key: string): CliMeta | undefined => CLI_FLAGS[key as keyof typeof CliFields];
const CliSchema = z.object(CliFields);
export type CliOptions = z.output<typeof CliSchema>;

/** --help groups, by option attribute name; anything not listed goes under "run". */
const HELP_GROUPS: Record<string, string> = {
  data: 'Data:', layout: 'Data:', label: 'Data:', limit: 'Data:', fold: 'Data:', folds: 'Data:', cache: 'Data:', cacheDtype: 'Data:', intensity: 'Data:', resize: 'Data:', normalize: 'Data:', imageSize: 'Data:',
  depth: 'Model:', baseChannels: 'Model:', upsample: 'Model:', outputPrior: 'Model:',
  epochs: 'Recipe:', batchSize: 'Recipe:', lr: 'Recipe:', milestones: 'Recipe:', gamma: 'Recipe:', seed: 'Recipe:', lossWeights: 'Recipe:', weightDecay: 'Recipe:', augment: 'Recipe:', rotate: 'Recipe:', elastic: 'Recipe:',
  out: 'Export:', name: 'Export:', version: 'Export:', force: 'Export:', threshold: 'Export:', minArea: 'Export:', description: 'Export:', intendedUse: 'Export:',
};
export const HELP_GROUP_ORDER = ['Data:', 'Model:', 'Recipe:', 'Run:', 'Export:'];

export const HELP_EXAMPLES = `
Examples:
  npm run train -- --data data/siim --epochs 24 --device cuda --name pneumothorax --version 2
  npm run train -- --data data/organs --layout labelmap --image-size 128 --limit 40 --epochs 4
`;

/** A default as one would type it: a bare string, a comma-separated list. */
function typedDefault(v: unknown): string | undefined {
  if (v === '') return 'none';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.join(',');
  return undefined;
}

export function buildProgram(): Command {
  const program = new Command('train')
    .description(
      'Train a UNet on DICOM (SIIM-ACR layout), image/mask pairs, or multi-class data (label maps or a Kaggle multi-class CSV; softmax over classes), export ONNX + model.json into a model repository, and write a training report.',
    )
    .allowExcessArguments(false);
  const options = [...schemaOptions(TrainFields, cliOf), ...schemaOptions(CliFields, cliOnly)];
  // Added group by group so --help lists the groups in this order.
  for (const group of HELP_GROUP_ORDER) {
    for (const o of options) {
      if ((HELP_GROUPS[o.attributeName()] ?? 'Run:') !== group) continue;
      if (o.defaultValueDescription === undefined && typedDefault(o.defaultValue) !== undefined) o.defaultValueDescription = typedDefault(o.defaultValue);
      program.addOption(o.helpGroup(group));
    }
  }
  program.addHelpText('after', HELP_EXAMPLES);
  return program;
}

/** The run's config and the process options from commander's parsed values; throws ConfigError. */
export function parseArgs(opts: Record<string, unknown>): { config: TrainConfig; cli: CliOptions } {
  const parsed = CliSchema.safeParse(optionValues(CliFields, cliOnly, opts));
  if (!parsed.success) throw new ConfigError(parsed.error.issues[0]!.message);
  const cli = parsed.data;
  const augment = cli.augment ? { ...DEFAULT_AUGMENT, rotate: cli.rotate, ...(cli.elastic ? { elastic: { p: 0.5, alpha: cli.elastic, grid: 5 } } : {}) } : null;
  const config = parseConfig({ ...optionValues(TrainFields, cliOf, opts), ...cli.imageSize, augment });
  return { config, cli };
}

const rel = (p: string): string => {
  const r = relative(process.cwd(), p);
  return r.startsWith('..') ? p : r;
};

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.parse(argv, { from: 'user' });
  let cfg: TrainConfig;
  let o: CliOptions;
  try {
    ({ config: cfg, cli: o } = parseArgs(program.opts()));
  } catch (e) {
    process.stderr.write(`train: ${oneLine(e as Error)}\n`);
    return 2;
  }
  const obs = createConsoleObserver();
  const logger = pino({ level: o.logLevel, base: undefined }, pino.destination(2));
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
      `best epoch ${r.bestEpoch}: validation Dice ${r.bestDice.toFixed(4)} at ${cfg.height}x${cfg.width}, ${r.bestDiceOriginal.toFixed(4)} at original resolution`,
      ...(best ? [`  train loss      ${best.trainLoss.toFixed(4)}: ${formatLosses(best.trainLosses)}`] : []),
      ...(best?.valLosses && best.valLoss !== undefined ? [`  validation loss ${best.valLoss.toFixed(4)}: ${formatLosses(best.valLosses)}`] : []),
      ...(best?.valClassDice ? [`per-class validation Dice: ${formatLosses(best.valClassDice)} at ${cfg.height}x${cfg.width}${best.valClassDiceOriginal ? `; ${formatLosses(best.valClassDiceOriginal)} at original resolution` : ''}`] : []),
      `parity: max |p_onnx - p_session| = ${r.parity.maxAbsDiff.toExponential(2)} over ${r.parity.images} validation images (tolerance ${r.parity.tolerance.toExponential(0)}): OK`,
      `model:       ${rel(r.files.onnx)}`,
      `manifest:    ${rel(r.files.manifest)}`,
      `report:      ${rel(r.files.curves)}, ${rel(r.files.scalars)}, ${rel(r.files.overlays)}, ${rel(r.files.log)}`,
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
