/**
 * Batch segmentation: DICOM files/folders in, a Kaggle/SIIM submission CSV out, optionally scored
 * against a train-rle.csv. It drives the same Engine as the HTTP service (no second inference path).
 *
 *   npm run segment -- data/dicom-images-test --out submission.csv --model unet:3 --tta
 *   npm run segment -- data/dicom-images-train --truth data/train-rle.csv --report report.json
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import pino from 'pino';
import type { Mask } from '../core/mask.ts';
import { dice } from '../core/metrics/index.ts';
import { decodeSiimEntry, formatSubmissionCsv, parseSiimRleCsv, type SiimRleTable } from '../core/rle/siim-csv.ts';
import { Engine, EngineConfigSchema, parseModelRef, planThreads, type EngineConfig, type EngineConfigInput, type SegmentResult } from '../core/engine/index.ts';

export interface SegmentCliOptions {
  out: string;
  model?: string;
  models: string;
  rle: 'siim' | 'kaggle';
  threshold?: number;
  minArea?: number;
  topThreshold?: number;
  minComponentArea?: number;
  keepLargest?: boolean;
  tta: boolean;
  provider: 'cpu' | 'cuda';
  deviceId: number;
  workers: number;
  intraOpThreads?: number;
  maxBatch: number;
  label?: string;
  /** Every class in the CSV: ImageId,ClassId,EncodedPixels (the Kaggle multi-class convention). */
  allLabels?: boolean;
  truth?: string;
  truthRle: 'siim' | 'kaggle';
  report?: string;
  progress: boolean;
  verbose: boolean;
  allowFailures: boolean;
}

const DICOM_EXTENSIONS = new Set(['.dcm', '.dicom', '.dic']);

function probability(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError('must be a number between 0 and 1 (exclusive)');
  return n;
}

function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be an integer >= 0');
  return n;
}

/** Files named on the command line, and every DICOM-named file under folders (recursively), sorted. */
export async function collectInputs(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && DICOM_EXTENSIONS.has(extname(e.name).toLowerCase())) out.push(p);
    }
  };
  for (const p of paths) {
    let st;
    try {
      st = await stat(p);
    } catch {
      throw new Error(`input not found: ${p}`);
    }
    if (st.isDirectory()) await walk(p);
    else out.push(p);
  }
  return out;
}

/** The submission ImageId: the file name without its DICOM extension. */
export function imageIdOf(file: string): string {
  const b = basename(file);
  const ext = extname(b);
  return DICOM_EXTENSIONS.has(ext.toLowerCase()) ? b.slice(0, -ext.length) : b;
}

/** One CSV line through the shared submission writer (so id rules and -1 for empty stay in one place). */
function submissionLine(imageId: string, mask: Mask, format: 'siim' | 'kaggle'): string {
  return formatSubmissionCsv([{ imageId, mask }], format).split('\n')[1]!;
}

interface ImageOutcome {
  file: string;
  imageId: string;
  line?: string;
  error?: { code?: string; message: string };
  area?: number;
  dice?: number;
  truthArea?: number;
}

export interface SegmentCliSummary {
  model: { name: string; version: string; executionProvider: string };
  images: number;
  succeeded: number;
  failed: number;
  positives: number;
  scored: number;
  meanDice: number | null;
  seconds: number;
  imagesPerSecond: number;
  /** Every image that failed; each is also in submission.csv as `-1` (no mask), so the CSV lists every image. */
  failures: Array<{ file: string; imageId: string; code?: string; error: string }>;
  perImage: Array<{ imageId: string; area: number; dice?: number; truthArea?: number }>;
}

function maskArea(m: Mask): number {
  let n = 0;
  for (let i = 0; i < m.data.length; i++) n += m.data[i] ? 1 : 0;
  return n;
}

/**
 * Segment every input and write the CSV (and report). `log` gets the summary lines (stdout), `warn`
 * the failures (stderr). The CSV lists every image: one that failed gets `-1` (no mask), like an empty one.
 */
export async function runSegment(
  inputs: string[],
  o: SegmentCliOptions,
  log: (line: string) => void,
  warn: (line: string) => void = (l) => void process.stderr.write(l + '\n'),
): Promise<SegmentCliSummary> {
  const files = await collectInputs(inputs);
  if (files.length === 0) throw new Error(`no DICOM files (${[...DICOM_EXTENSIONS].join(', ')}) found in ${inputs.join(', ')}`);
  let truth: SiimRleTable | undefined;
  if (o.truth) truth = parseSiimRleCsv(await readFile(o.truth, 'utf8'), o.truth);

  const logger = pino({ level: o.verbose ? 'info' : 'warn', base: undefined }, pino.destination(2));
  const ref = o.model ? parseModelRef(o.model) : undefined;
  // The engine's plan (0 = automatic), resolved here to size what is kept in flight.
  const plan = planThreads({ workers: o.workers, intraOpThreads: o.intraOpThreads ?? 0, maxBatch: o.maxBatch, provider: o.provider });
  // Enough requests in flight to fill every worker's batches, with TTA pairs counted twice.
  const inflight = plan.workers * plan.maxBatch * 2;
  // Options the CLI has no flag for (maxDelayMs, maxPixels, spinning) take the schema's defaults.
  const cfg: EngineConfig = EngineConfigSchema.parse({
    modelRepository: o.models,
    provider: o.provider,
    deviceId: o.deviceId,
    workers: plan.workers,
    intraOpThreads: plan.intraOpThreads,
    maxBatch: plan.maxBatch,
    maxQueue: inflight * 2,
    // --model names one model: load only that one, not every model of the repository.
    ...(ref ? { defaultModel: ref.name, models: [ref.name] } : {}),
  } satisfies EngineConfigInput);
  const engine = await Engine.start(cfg, logger);
  const t0 = performance.now();
  const outcomes: ImageOutcome[] = new Array(files.length);
  let modelUsed: SegmentCliSummary['model'] | undefined;
  const bar = o.progress ? new cliProgress.SingleBar({ format: 'segment |{bar}| {value}/{total} {eta_formatted} left, {failed} failed', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  let failed = 0;
  let header = 'ImageId,EncodedPixels';
  let emptyRows = (id: string): string => `${id},-1`;
  try {
    const chosen = ref ? engine.model(ref.name, ref.version) : engine.defaultModel();
    if (!chosen) throw new Error(ref ? `model ${o.model} not found in ${resolve(o.models)}` : `no model in ${resolve(o.models)}`);
    if (o.label && !chosen.manifest.labels.includes(o.label)) throw new Error(`model ${chosen.name} has no label '${o.label}' (labels: ${chosen.manifest.labels.join(', ')})`);
    // The CSV's label(s), by name: a softmax model reports no mask for its background channel.
    const maskLabels = chosen.manifest.labels.filter((l) => l !== chosen.manifest.background);
    const csvLabel = o.label ?? maskLabels[0]!;
    // ClassId as the trainer's multi-class layouts number classes: the manifest's channel index when it has a
    // background (channel 0), else 1-based.
    const classIdOf = (label: string) => chosen.manifest.labels.indexOf(label) + (chosen.manifest.background === undefined ? 1 : 0);
    if (o.allLabels) header = 'ImageId,ClassId,EncodedPixels';
    emptyRows = (id: string) => (o.allLabels ? maskLabels.map((l) => `${id},${classIdOf(l)},-1`).join('\n') : `${id},-1`);
    bar?.start(files.length, 0, { failed: 0 });

    const one = async (i: number): Promise<void> => {
      const file = files[i]!;
      const imageId = imageIdOf(file);
      try {
        const bytes = await readFile(file);
        const req: Parameters<Engine['segment']>[0] = { dicom: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), tta: o.tta, transferDicom: true };
        if (ref) {
          req.model = ref.name;
          if (ref.version) req.version = ref.version;
        }
        // Rules left undefined fall back to the manifest's.
        Object.assign(req, { threshold: o.threshold, minArea: o.minArea, topThreshold: o.topThreshold, minComponentArea: o.minComponentArea, keepLargest: o.keepLargest });
        const r: SegmentResult = await engine.segment(req);
        modelUsed ??= r.model;
        const m = r.masks.find((x) => x.label === csvLabel)!;
        const line = o.allLabels
          ? r.masks.map((x) => submissionLine(imageId, x.mask, o.rle).replace(`${imageId},`, `${imageId},${classIdOf(x.label)},`)).join('\n')
          : submissionLine(imageId, m.mask, o.rle);
        const out: ImageOutcome = { file, imageId, line, area: m.area };
        const entry = truth?.get(imageId);
        if (entry) {
          const t = decodeSiimEntry(entry, r.image.rows, r.image.columns, o.truthRle);
          out.dice = dice(m.mask, t);
          out.truthArea = maskArea(t);
        }
        outcomes[i] = out;
      } catch (e) {
        failed++;
        const err = e as Error & { code?: string };
        outcomes[i] = { file, imageId, error: { message: err.message.split('\n')[0]!, ...(typeof err.code === 'string' ? { code: err.code } : {}) } };
      }
      bar?.increment(1, { failed });
    };

    // A fixed number of lanes pulling the next file keeps the engine fed without reading every file at once.
    let next = 0;
    const lanes = Array.from({ length: Math.min(inflight, files.length) }, async () => {
      while (next < files.length) await one(next++);
    });
    await Promise.all(lanes);
  } finally {
    bar?.stop();
    await engine.close();
  }

  const ok = outcomes.filter((x) => x.line !== undefined);
  // A submission must list every image: one that failed is written as -1 (no mask), and reported.
  const csv = [header, ...outcomes.map((x) => x.line ?? emptyRows(x.imageId))].join('\n') + '\n';
  await writeFile(o.out, csv);
  const scoredRows = ok.filter((x) => x.dice !== undefined);
  const seconds = (performance.now() - t0) / 1000;
  const summary: SegmentCliSummary = {
    model: modelUsed ?? { name: o.model ?? '', version: '', executionProvider: o.provider },
    images: files.length,
    succeeded: ok.length,
    failed,
    positives: ok.filter((x) => (x.area ?? 0) > 0).length,
    scored: scoredRows.length,
    meanDice: scoredRows.length ? scoredRows.reduce((a, x) => a + x.dice!, 0) / scoredRows.length : null,
    seconds,
    imagesPerSecond: ok.length / seconds,
    failures: outcomes.filter((x) => x.error).map((x) => ({ file: x.file, imageId: x.imageId, ...(x.error!.code ? { code: x.error!.code } : {}), error: x.error!.message })),
    perImage: ok.map((x) => ({ imageId: x.imageId, area: x.area!, ...(x.dice !== undefined ? { dice: x.dice, truthArea: x.truthArea! } : {}) })),
  };
  log(`${ok.length}/${files.length} images segmented with ${summary.model.name}:${summary.model.version} (${summary.model.executionProvider}) in ${seconds.toFixed(1)} s, ${summary.positives} positive -> ${o.out}`);
  for (const f of summary.failures) warn(`failed: ${f.file}: ${f.code ? `${f.code}: ` : ''}${f.error} (written as ${f.imageId},-1)`);
  if (failed > 0) warn(`${failed} of ${files.length} images failed; each is in ${o.out} as -1 (no mask)${o.allowFailures ? '' : '; exit code 1 (--allow-failures to exit 0)'}`);
  if (truth) {
    const missing = ok.length - scoredRows.length;
    log(
      summary.meanDice === null
        ? `no segmented image has a row in ${o.truth}`
        : `mean Dice ${summary.meanDice.toFixed(4)} over ${scoredRows.length} images${missing ? ` (${missing} without truth)` : ''}`,
    );
  }
  const reportPath = o.report ?? (o.truth ? o.out.replace(/\.csv$/i, '') + '.report.json' : undefined);
  if (reportPath) {
    await writeFile(reportPath, JSON.stringify(summary, null, 2) + '\n');
    log(`report -> ${reportPath}`);
  }
  return summary;
}

export function buildProgram(): Command {
  return new Command('segment')
    .description(
      'Segment DICOM files with a served model and write a submission CSV (ImageId,EncodedPixels).\n' +
        'Every image gets a row: an image that fails (unreadable, unsupported, too large, ...) is written as -1 (no mask),\n' +
        'named on stderr and in the JSON report (failures), and makes the exit code 1 unless --allow-failures.',
    )
    .argument('<inputs...>', 'DICOM files and/or folders (searched recursively for .dcm/.dicom/.dic)')
    .option('-o, --out <file>', 'submission CSV to write', 'submission.csv')
    .option('-m, --model <name[:version]>', 'model to use; only this model is loaded (default: the repository default, newest version)')
    .option('--models <dir>', 'model repository (env MODEL_REPOSITORY)', process.env.MODEL_REPOSITORY || 'models')
    .addOption(new Option('--rle <format>', 'RLE of EncodedPixels').choices(['siim', 'kaggle']).default('siim'))
    .option('--threshold <p>', 'probability threshold (default: the manifest)', probability)
    .option('--min-area <px>', 'report masks smaller than this (original pixels) as empty (default: the manifest)', nonNegativeInt)
    .option('--top-threshold <p>', 'SIIM triplet: keep a mask only when --min-area pixels exceed this (default: the manifest)', probability)
    .option('--min-component-area <px>', 'remove connected components smaller than this (default: the manifest)', nonNegativeInt)
    .option('--keep-largest', 'keep only the largest connected component (default: the manifest)')
    .option('--tta', 'horizontal-flip test-time augmentation', false)
    .addOption(new Option('--provider <provider>', 'execution provider (cuda falls back to cpu with a warning)').choices(['cpu', 'cuda']).default('cpu'))
    .option('--device-id <n>', 'CUDA device', nonNegativeInt, 0)
    // Node counts the host's cores, not a container's CPU quota: in a pod, set these to the limit.
    .option('--workers <n>', 'inference worker threads, 0 = automatic (the engine\'s plan, README "Thread plan") (env WORKERS)', nonNegativeInt, Number(process.env.WORKERS ?? 0) || 0)
    .option('--intra-op-threads <n>', 'ORT threads per worker, 0 = automatic (env INTRA_OP_THREADS)', nonNegativeInt, Number(process.env.INTRA_OP_THREADS ?? 0) || 0)
    .option('--max-batch <n>', 'largest dynamic batch, 0 = automatic (4 on cpu, 8 on cuda) (env MAX_BATCH)', nonNegativeInt, Number(process.env.MAX_BATCH ?? 0) || 0)
    .option('--label <label>', 'which output label goes into the CSV (default: the first; a softmax model\'s background has none)')
    .option('--all-labels', 'every label in the CSV as ImageId,ClassId,EncodedPixels (Kaggle multi-class; ClassId as the trainer numbers classes)')
    .option('--truth <csv>', 'train-rle.csv to score against (mean Dice; images without a row are not scored)')
    .addOption(new Option('--truth-rle <format>', 'RLE of the truth file').choices(['siim', 'kaggle']).default('siim'))
    .option('--report <file>', 'JSON report (default with --truth: <out>.report.json)')
    .option('--allow-failures', 'exit 0 even when some images failed (they are still written as -1 and reported)', false)
    .option('--no-progress', 'no progress bar')
    .option('--verbose', 'log engine info to stderr', false);
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    return typeof code === 'number' ? code : 1;
  }
  const opts = program.opts<SegmentCliOptions>();
  try {
    const summary = await runSegment(program.processedArgs[0] as string[], opts, (l) => process.stdout.write(l + '\n'));
    // Exit 1 when any image failed (its row is -1, which would silently score as "no finding").
    return summary.succeeded === 0 || (summary.failed > 0 && !opts.allowFailures) ? 1 : 0;
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message.split('\n')[0]}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
