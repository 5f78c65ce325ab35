/**
 * After the last epoch: restore the best epoch's weights, validate them at original resolution
 * (collecting overlay examples and parity images on the way), export the model (parity-checked) into
 * the model repository, and write the training report next to it.
 */
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import type { PreprocessSpec } from '../../core/preprocess/spec.ts';
import { isMulticlass, manifestTraining, type TrainConfig } from '../config.ts';
import { lossSet } from '../model/loss-set.ts';
import type { PreparedSample } from '../data/cache.ts';
import type { Batch } from '../data/loader.ts';
import { quantisationBound } from '../data/quantize.ts';
import { exportModel, type ExportResult } from '../export.ts';
import { writeClassOverlaysPng, writeCurvesPng, writeOverlaysPng, writeScalarsCsv, writeTrainingLog, type ClassOverlayExample, type OverlayExample } from '../report.ts';
import type { TrainingSession } from '../session/types.ts';
import { validate, type ImageScore, type ValidationResult } from '../validate.ts';
import { softmaxOf } from './fit.ts';
import type { Loaders, PreparedData } from './prepare.ts';
import type { Run } from './restore.ts';
import { type TrainObserver, type TrainResult } from './types.ts';

interface FinalValidation {
  result: ValidationResult;
  overlays: OverlayExample[];
  /** Multi-class runs: class-map overlays instead. */
  classOverlays: ClassOverlayExample[];
  /** The first `paritySamples` validation images, concatenated. */
  parityImages: Float32Array;
  parityCount: number;
}

/** Validates the session's weights at original resolution, keeping overlay examples and parity inputs. */
async function finalValidation(session: TrainingSession, cfg: TrainConfig, data: PreparedData, loaders: Loaders, run: Run, obs: TrainObserver): Promise<FinalValidation> {
  const overlayIds = pickOverlayExamples(data.valSet, cfg.overlayExamples, data.stratum, run.bestScores);
  const overlays: OverlayExample[] = [];
  const classOverlays: ClassOverlayExample[] = [];
  const C = cfg.labels.length;
  const parityParts: Float32Array[] = [];
  const hw = cfg.height * cfg.width;
  const collect = (batch: Batch, probs: Float32Array): void => {
    const per = batch.images.length / batch.n;
    const perProbs = probs.length / batch.n;
    for (let k = 0; k < batch.n; k++) {
      const s = batch.samples[k]!;
      if (parityParts.length < cfg.paritySamples) parityParts.push(batch.images.slice(k * per, (k + 1) * per));
      if (!overlayIds.has(s.id)) continue;
      if (batch.labels) {
        classOverlays.push({ id: s.id, image: batch.images.slice(k * per, k * per + hw), truth: batch.labels.slice(k * hw, (k + 1) * hw), predicted: argmaxClasses(probs.subarray(k * C * hw, (k + 1) * C * hw), C, hw), dice: 0 });
        continue;
      }
      const truth = batch.cached![k]!.mask.slice(0, hw);
      overlays.push({ id: s.id, image: batch.images.slice(k * per, k * per + hw), truth, probability: probs.slice(k * perProbs, k * perProbs + hw), dice: 0 });
    }
  };
  const post = { threshold: cfg.threshold, minArea: cfg.minArea };
  const result = await validate(session, loaders.val(true), loaders.spec, post, { original: true, onBatch: (d, t) => obs.validationProgress?.(d, t), onPredictions: collect, ...softmaxOf(cfg) });
  const scoreOf = new Map(result.images.map((s) => [s.id, s]));
  for (const o of overlays) o.dice = scoreOf.get(o.id)?.dice ?? 0;
  overlays.sort((a, b) => Number(b.truth.some((v) => v)) - Number(a.truth.some((v) => v)) || a.dice - b.dice);
  const inStratum = new Map(data.valSet.map((s) => [s.id, data.stratum(s)]));
  for (const o of classOverlays) {
    o.dice = scoreOf.get(o.id)?.dice ?? 0;
    const cd = scoreOf.get(o.id)?.classDice;
    if (cd) o.classDice = cd;
  }
  classOverlays.sort((a, b) => Number(inStratum.get(b.id)) - Number(inStratum.get(a.id)) || a.dice - b.dice);
  const parityImages = new Float32Array(parityParts.reduce((n, p) => n + p.length, 0));
  parityParts.reduce((off, p) => (parityImages.set(p, off), off + p.length), 0);
  return { result, overlays, classOverlays, parityImages, parityCount: parityParts.length };
}

/** H*W class indices: the most probable class at each pixel (the lower channel on a tie, as core's argmax). */
function argmaxClasses(probs: Float32Array, classes: number, hw: number): Uint8Array {
  const out = new Uint8Array(hw);
  for (let i = 0; i < hw; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[c * hw + i]! > probs[best * hw + i]!) best = c;
    out[i] = best;
  }
  return out;
}

const clamp01 = (v: number): number => Math.min(1, Math.max(0, v));

function exportBest(session: TrainingSession, cfg: TrainConfig, data: PreparedData, spec: PreprocessSpec, run: Run, final: FinalValidation): Promise<ExportResult> {
  return exportModel(session, {
    out: resolve(cfg.out),
    parityImages: final.parityImages,
    parityCount: final.parityCount,
    tolerance: cfg.parityTolerance,
    threads: cfg.threads,
    force: cfg.force,
    manifest: {
      name: cfg.name,
      version: cfg.version,
      description: cfg.description || `UNet (depth ${cfg.depth}, base ${cfg.baseChannels}) trained on ${data.samples.length} ${cfg.layout}-layout images at ${cfg.height}x${cfg.width}`,
      intendedUse: cfg.intendedUse,
      spec,
      threshold: cfg.threshold,
      minArea: cfg.minArea,
      labels: cfg.labels,
      ...(isMulticlass(cfg) ? { activation: 'softmax' as const, background: cfg.labels[0]! } : {}),
      training: {
        dataset: { layout: cfg.layout, images: data.samples.length, positives: data.counts.positives, source: data.source },
        architecture: { kind: 'unet', depth: cfg.depth, baseChannels: cfg.baseChannels, upsample: cfg.upsample, inChannels: spec.channels, classes: cfg.labels.length, parameters: session.parameterCount, batchNorm: 'folded' },
        epochs: run.history.length,
        ...manifestTraining(cfg),
        // The service-path figure (original resolution, min-area gate): what a user of the model gets.
        validationDice: clamp01(final.result.diceOriginal ?? final.result.dice),
        bestEpoch: run.bestEpoch,
        device: session.executionProvider,
        durationSeconds: Math.round(run.seconds),
      },
    },
  });
}

/** training-curves.png, validation-overlays.png and training-log.json beside the model. */
async function writeReport(dir: string, session: TrainingSession, cfg: TrainConfig, data: PreparedData, loaders: Loaders, run: Run, final: FinalValidation, exported: ExportResult, timing: Record<string, number>) {
  const files = { curves: join(dir, 'training-curves.png'), overlays: join(dir, 'validation-overlays.png'), scalars: join(dir, 'scalars.csv') };
  const c = data.counts;
  await writeCurvesPng(files.curves, run.history, `${cfg.name} v${cfg.version}: fold ${cfg.fold}/${cfg.folds}, ${c.train} train / ${c.val} val images`, lossSet(isMulticlass(cfg)));
  await writeScalarsCsv(files.scalars, run.history);
  if (isMulticlass(cfg)) await writeClassOverlaysPng(files.overlays, final.classOverlays, cfg.height, cfg.width, cfg.labels, 0);
  else await writeOverlaysPng(files.overlays, final.overlays, cfg.height, cfg.width, cfg.threshold);
  const log = await writeTrainingLog(dir, {
    name: cfg.name,
    version: cfg.version,
    createdAt: new Date().toISOString(),
    config: { ...run.fingerprint, epochs: cfg.epochs, device: cfg.device, threads: cfg.threads ?? null, threshold: cfg.threshold, minArea: cfg.minArea, labels: cfg.labels },
    preprocessing: loaders.spec,
    dataset: {
      layout: cfg.layout,
      source: data.source,
      counts: data.scanCounts,
      used: data.used,
      unreadable: c.unreadable,
      images: data.samples.length,
      positives: c.positives,
      ...(data.classImages ? { classes: cfg.labels, background: cfg.labels[0], imagesWithClass: data.classImages } : {}),
      train: { images: c.train, positives: c.trainPositives },
      validation: { images: c.val, positives: c.valPositives },
    },
    cache: { dtype: cfg.cacheDtype, maxAbsError: quantisationBound(cfg.cacheDtype), hits: data.cacheStats.hits, misses: data.cacheStats.misses },
    model: { parameters: session.parameterCount, executionProvider: session.executionProvider, onnxBytes: exported.bytes, sha256: exported.manifest.onnx.sha256, opset: exported.manifest.onnx.opset },
    best: {
      epoch: run.bestEpoch,
      validationDice: final.result.dice,
      // The Dice a predict-nothing model gets on the same fold: the floor the figures above must beat.
      allEmptyBaseline: final.result.baseline,
      validationDiceOriginal: final.result.diceOriginal,
      // The training objective on the validation fold with the exported weights.
      validationLoss: final.result.loss,
      validationLosses: final.result.losses,
      ...(final.result.classDice ? { classDice: final.result.classDice, classDiceOriginal: final.result.classDiceOriginal } : {}),
    },
    parity: exported.parity,
    history: run.history,
    validationImages: final.result.images,
    timing,
    resumedFrom: run.resumedFrom ? { epochsDone: run.resumedFrom.epochsDone } : null,
  });
  return { ...files, log };
}

/** The best epoch's model validated, exported and reported; `t0`/`load0` are the run's start. */
export async function finalise(session: TrainingSession, cfg: TrainConfig, data: PreparedData, loaders: Loaders, run: Run, obs: TrainObserver, start: { t0: number; load0: number }): Promise<TrainResult> {
  if (run.bestCheckpoint) session.restore(run.bestCheckpoint);
  obs.info?.(`best epoch ${run.bestEpoch}: validating at original resolution and exporting`);
  const final = await finalValidation(session, cfg, data, loaders, run, obs);
  const exported = await exportBest(session, cfg, data, loaders.spec, run, final);
  const seconds = (performance.now() - start.t0) / 1000;
  const timing = { trainingSeconds: run.seconds, wallSeconds: seconds, cpus: cpus().length, loadAverageStart: start.load0, loadAverageEnd: loadavg()[0]! };
  const report = await writeReport(exported.dir, session, cfg, data, loaders, run, final, exported, timing);
  return {
    modelDir: exported.dir,
    files: { onnx: exported.onnxPath, manifest: exported.manifestPath, ...report, lastCheckpoint: run.paths.last, bestCheckpoint: run.paths.best },
    bestEpoch: run.bestEpoch,
    bestDice: final.result.dice,
    bestDiceOriginal: final.result.diceOriginal ?? Number.NaN,
    ...(final.result.classDice ? { bestClassDice: final.result.classDice } : {}),
    ...(final.result.classDiceOriginal ? { bestClassDiceOriginal: final.result.classDiceOriginal } : {}),
    parity: exported.parity,
    executionProvider: session.executionProvider,
    parameterCount: session.parameterCount,
    seconds,
    history: run.history,
    counts: data.counts,
    cache: { ...data.cacheStats, dir: data.cache.dir },
    ...(run.resumedFrom ? { resumedFrom: run.resumedFrom } : {}),
  };
}

/**
 * Half positives, half negatives. With the best epoch's scores: the worst and the best positives
 * and the negatives with false positives first, so the grid shows failures as well as successes;
 * without them (resumed after the best epoch), the first ones in validation order.
 */
function pickOverlayExamples(val: readonly PreparedSample[], n: number, positive: (s: PreparedSample) => boolean, scores?: readonly ImageScore[]): Set<string> {
  const dice = new Map(scores?.map((s) => [s.id, s.dice]) ?? []);
  const byDice = (ids: string[]): string[] => (scores ? ids.slice().sort((a, b) => (dice.get(a) ?? 1) - (dice.get(b) ?? 1)) : ids);
  const posIds = byDice(val.filter(positive).map((s) => s.id));
  const negIds = byDice(val.filter((s) => !positive(s)).map((s) => s.id));
  const nPos = Math.min(posIds.length, Math.max(n - negIds.length, Math.ceil(n / 2)));
  const worst = Math.ceil(nPos / 2);
  const pos = scores ? [...posIds.slice(0, worst), ...posIds.slice(Math.max(worst, posIds.length - (nPos - worst)))] : posIds.slice(0, nPos);
  return new Set([...pos, ...negIds.slice(0, n - pos.length)]);
}
