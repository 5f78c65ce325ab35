/**
 * One training run, start to finish: scan -> cache -> stratified fold -> train with per-epoch
 * validation and checkpoints -> restore the best epoch -> export with parity check -> report.
 * The CLI is a thin layer over `train`; tests call it directly with a silent observer.
 */
import { cpus, loadavg } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { access } from 'node:fs/promises';
import pino, { type Logger } from 'pino';
import { PreprocessSpecSchema, type PreprocessSpec } from '../core/preprocess/spec.ts';
import { createTrainingSession } from './session/training-session.ts';
import type { Checkpoint, TrainingSession } from './session/types.ts';
import { resumeFingerprint, validateConfig, type TrainConfig } from './config.ts';
import { TensorCache, type PreparedSample } from './data/cache.ts';
import { decodeSample } from './data/decode.ts';
import { BatchLoader, datasetStatistics, type Normalisation } from './data/loader.ts';
import { quantisationBound } from './data/quantize.ts';
import { scanDataset } from './data/scan.ts';
import { DataError, type SampleDecoder, type ScanCounts } from './data/types.ts';
import { exportModel, type ExportResult } from './export.ts';
import { assignFolds } from './folds.ts';
import { fingerprintMismatch, loadRunCheckpoint, ResumeError, saveRunCheckpoint, type RunState } from './checkpoint-file.ts';
import { writeCurvesPng, writeOverlaysPng, writeTrainingLog, type EpochMetrics, type OverlayExample } from './report.ts';
import { Stream, shuffled, streamRng } from './rng.ts';
import { learningRate } from './schedule.ts';
import { validate, type ImageScore } from './validate.ts';

export interface BatchProgress {
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
  imagesPerSecond: number;
  lr: number;
}

/** Progress and messages; every member optional (tests pass {}). */
export interface TrainObserver {
  info?(message: string): void;
  warn?(message: string): void;
  cacheStart?(total: number): void;
  cacheProgress?(done: number, total: number, hits: number): void;
  cacheEnd?(): void;
  epochStart?(epoch: number, epochs: number, batches: number, lr: number): void;
  batch?(p: BatchProgress): void;
  validationProgress?(done: number, total: number): void;
  epochEnd?(m: EpochMetrics): void;
}

export interface TrainDeps {
  /** Decoder override (tests count calls); defaults to the shared core decoders. */
  decode?: SampleDecoder;
  logger?: Logger;
}

export interface TrainResult {
  modelDir: string;
  files: { onnx: string; manifest: string; curves: string; overlays: string; log: string; lastCheckpoint: string; bestCheckpoint: string };
  bestEpoch: number;
  bestDice: number;
  bestDiceOriginal: number;
  parity: ExportResult['parity'];
  executionProvider: 'cpu' | 'cuda';
  parameterCount: number;
  seconds: number;
  history: EpochMetrics[];
  counts: ScanCounts & { unreadable: number; train: number; val: number; positives: number; trainPositives: number; valPositives: number };
  cache: { hits: number; misses: number; decodes: number; dir: string };
  resumedFrom?: { path: string; epochsDone: number };
}

/** A class-blind seeded subset (sorted first, so independent of directory order). */
function limitSamples<T extends { id: string }>(items: readonly T[], limit: number | undefined, seed: number): T[] {
  const sorted = items.slice().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (limit === undefined || limit >= sorted.length) return sorted;
  return shuffled(sorted, streamRng(seed, Stream.limit)).slice(0, limit).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

export async function train(cfg: TrainConfig, obs: TrainObserver = {}, deps: TrainDeps = {}): Promise<TrainResult> {
  validateConfig(cfg);
  const t0 = performance.now();
  const load0 = loadavg()[0]!;

  // ---- data ----
  const scan = await scanDataset(cfg.layout, cfg.data);
  const c = scan.counts;
  if (c.imagesWithoutLabel) obs.warn?.(`${c.imagesWithoutLabel} image(s) have no label (${cfg.layout === 'siim' ? 'not in train-rle.csv' : 'no _mask file'}); skipped`);
  if (c.labelsWithoutImage) obs.warn?.(`${c.labelsWithoutImage} label(s) have no image (${cfg.layout === 'siim' ? 'train-rle.csv rows without a .dcm' : '_mask files without an image'}); skipped`);
  if (c.duplicates) obs.warn?.(`${c.duplicates} duplicate id(s); kept the first of each`);
  const refs = limitSamples(scan.samples, cfg.limit, cfg.seed);
  obs.info?.(`data: ${scan.samples.length} labelled images in ${scan.root} (${cfg.layout} layout)${refs.length < scan.samples.length ? `, using ${refs.length} (--limit)` : ''}`);

  const baseSpec: PreprocessSpec = PreprocessSpecSchema.parse({ size: { height: cfg.height, width: cfg.width }, resize: cfg.resize, intensity: cfg.intensity, channels: 1 });
  let decodes = 0;
  const inner = deps.decode ?? decodeSample;
  const cache = new TensorCache({ dir: resolve(cfg.cacheDir), spec: baseSpec, dtype: cfg.cacheDtype, decode: (r) => (decodes++, inner(r)) });
  const c0 = performance.now();
  obs.cacheStart?.(refs.length);
  let hits = 0;
  const prep = await cache.prepare(refs, {
    concurrency: cfg.decodeConcurrency,
    onProgress: (done, total, hit) => {
      if (hit) hits++;
      obs.cacheProgress?.(done, total, hits);
    },
  });
  obs.cacheEnd?.();
  if (prep.failed.length) {
    const shown = prep.failed.slice(0, 3).map((f) => `${f.ref.id}: ${f.message}`).join('; ');
    obs.warn?.(`${prep.failed.length} image(s) could not be read and are skipped (${shown}${prep.failed.length > 3 ? '; ...' : ''})`);
  }
  const samples = prep.prepared;
  if (samples.length < cfg.folds) throw new DataError(`only ${samples.length} readable labelled image(s); need at least ${cfg.folds} for ${cfg.folds} folds`);
  obs.info?.(`cache: ${prep.hits} reused, ${prep.misses} decoded in ${((performance.now() - c0) / 1000).toFixed(1)}s, at ${cache.dir} (${cfg.cacheDtype}, max error ${quantisationBound(cfg.cacheDtype).toExponential(1)})`);

  const foldOf = assignFolds(samples.map((s) => ({ id: s.id, hasMask: s.meta.hasMask })), cfg.folds, cfg.seed);
  const trainSet: PreparedSample[] = [];
  const valSet: PreparedSample[] = [];
  samples.forEach((s, i) => (foldOf[i] === cfg.fold ? valSet : trainSet).push(s));
  const pos = (xs: PreparedSample[]): number => xs.filter((s) => s.meta.hasMask).length;
  obs.info?.(`fold ${cfg.fold}/${cfg.folds}: train ${trainSet.length} (${pos(trainSet)} with mask), validation ${valSet.length} (${pos(valSet)} with mask)`);

  // ---- resume state ----
  let state: RunState | undefined;
  let resumeCkpt: Checkpoint | undefined;
  let bestCkpt: Checkpoint | undefined;
  const fingerprint = resumeFingerprint(cfg);
  if (cfg.resume) {
    const loaded = await loadRunCheckpoint(cfg.resume);
    const diff = fingerprintMismatch(loaded.state.fingerprint, fingerprint);
    if (diff) throw new ResumeError(`cannot resume from ${cfg.resume}: ${diff}; pass the options of the original run`);
    if (loaded.state.epochsDone >= cfg.epochs) throw new ResumeError(`checkpoint ${cfg.resume} already has ${loaded.state.epochsDone} epoch(s); pass --epochs greater than that to continue`);
    state = loaded.state;
    resumeCkpt = loaded.checkpoint;
    if (state.bestEpoch > 0) {
      const bestPath = join(dirname(cfg.resume), 'best.ckpt');
      if (!(await exists(bestPath))) throw new ResumeError(`cannot resume: ${bestPath} (best epoch ${state.bestEpoch}) is missing next to ${cfg.resume}`);
      bestCkpt = (await loadRunCheckpoint(bestPath)).checkpoint;
    }
    obs.info?.(`resuming from ${cfg.resume}: ${state.epochsDone} epoch(s) done, best validation Dice ${state.bestDice.toFixed(4)} at epoch ${state.bestEpoch}`);
  }

  let normalisation: Normalisation | null = state?.normalisation ?? null;
  if (cfg.normalize === 'dataset' && !normalisation) {
    normalisation = await datasetStatistics(cache, trainSet);
    obs.info?.(`normalisation (training fold): mean ${normalisation.mean.map((v) => v.toFixed(4)).join(',')} std ${normalisation.std.map((v) => v.toFixed(4)).join(',')}`);
  }
  const spec: PreprocessSpec = PreprocessSpecSchema.parse({ ...baseSpec, ...(normalisation ? { normalize: normalisation } : {}) });

  const trainLoader = new BatchLoader(cache, trainSet, {
    batchSize: cfg.batchSize,
    shuffle: true,
    seed: cfg.seed,
    augment: cfg.augment ?? undefined,
    normalize: normalisation ?? undefined,
    prefetch: cfg.prefetch,
    minBatch: 2,
  });
  const valLoader = (original: boolean): BatchLoader =>
    new BatchLoader(cache, valSet, { batchSize: cfg.batchSize, shuffle: false, seed: cfg.seed, normalize: normalisation ?? undefined, prefetch: cfg.prefetch, originalMasks: original });
  if (trainLoader.batchesPerEpoch() === 0) throw new DataError(`the training fold has ${trainSet.length} image(s), fewer than one batch of 2`);

  // ---- session ----
  const session: TrainingSession = await createTrainingSession({
    unet: { depth: cfg.depth, baseChannels: cfg.baseChannels, inChannels: spec.channels, classes: cfg.labels.length, upsample: cfg.upsample },
    height: cfg.height,
    width: cfg.width,
    loss: cfg.loss,
    adam: { weightDecay: cfg.weightDecay },
    device: cfg.device,
    deviceId: cfg.deviceId,
    seed: cfg.seed,
    intraOpThreads: cfg.threads,
    // The engine logs session set-up at info; a run only wants its warnings (e.g. the CUDA fallback).
    logger: deps.logger ?? pino({ level: 'warn' }),
  });
  try {
    obs.info?.(`model: UNet depth ${cfg.depth}, base ${cfg.baseChannels} channels, ${session.parameterCount.toLocaleString('en-US')} parameters; execution provider ${session.executionProvider.toUpperCase()}${cfg.device === 'cuda' && session.executionProvider !== 'cuda' ? ' (CUDA requested but unavailable: running on CPU)' : ''}`);
    if (resumeCkpt) session.restore(resumeCkpt);
    else if (cfg.outputPrior !== 'none') {
      const prior = cfg.outputPrior === 'auto' ? foregroundFraction(trainSet) : cfg.outputPrior;
      if (setOutputPrior(session, prior)) obs.info?.(`output bias initialised to logit(${prior.toPrecision(3)}) = ${logit(prior).toFixed(3)} (foreground prior${cfg.outputPrior === 'auto' ? ' of the training fold' : ''})`);
      else obs.warn?.('the model has no head.bias; --output-prior ignored');
    }

    const lastPath = join(resolve(cfg.workDir), 'last.ckpt');
    const bestPath = join(resolve(cfg.workDir), 'best.ckpt');
    const history: EpochMetrics[] = state ? state.history.slice() : [];
    let bestDice = state?.bestDice ?? -1;
    let bestEpoch = state?.bestEpoch ?? 0;
    let globalStep = state?.globalStep ?? 0;
    let seconds = state?.seconds ?? 0;
    const startEpoch = state?.epochsDone ?? 0;
    /** Per-image scores of the best epoch (this process only), to pick informative overlay examples. */
    let bestScores: ImageScore[] | undefined;
    const runState = (epochsDone: number): RunState => ({
      format: 'unet-train-state-v1',
      epochsDone,
      globalStep,
      history,
      bestEpoch,
      bestDice,
      normalisation,
      fingerprint,
      seconds,
      savedAt: new Date().toISOString(),
    });
    if (bestCkpt && resolve(dirname(cfg.resume!)) !== resolve(cfg.workDir)) await saveRunCheckpoint(bestPath, runState(startEpoch), bestCkpt);

    const schedule = { lr: cfg.lr, milestones: cfg.milestones, gamma: cfg.gamma };
    for (let epoch = startEpoch; epoch < cfg.epochs; epoch++) {
      const e0 = performance.now();
      const lr = learningRate(schedule, epoch);
      const batches = trainLoader.batchesPerEpoch();
      obs.epochStart?.(epoch + 1, cfg.epochs, batches, lr);
      const sum = { loss: 0, bce: 0, dice: 0, focal: 0 };
      let seen = 0;
      let b = 0;
      let stepTime = 0;
      for await (const batch of trainLoader.epoch(epoch)) {
        const s0 = performance.now();
        const r = await session.step(batch.images, batch.masks, batch.n, lr);
        stepTime += performance.now() - s0;
        if (!Number.isFinite(r.loss)) throw new Error(`training diverged: loss ${r.loss} at epoch ${epoch + 1}, batch ${b + 1}; lower --lr`);
        sum.loss += r.loss * batch.n;
        sum.bce += r.bce * batch.n;
        sum.dice += r.dice * batch.n;
        sum.focal += r.focal * batch.n;
        seen += batch.n;
        globalStep++;
        b++;
        obs.batch?.({ epoch: epoch + 1, batch: b, batches, loss: sum.loss / seen, imagesPerSecond: seen / ((performance.now() - e0) / 1000), lr });
      }
      const trainSeconds = (performance.now() - e0) / 1000;
      const val = await validate(session, valLoader(cfg.validateOriginalEachEpoch), spec, { threshold: cfg.threshold, minArea: cfg.minArea }, {
        original: cfg.validateOriginalEachEpoch,
        onBatch: (d, t) => obs.validationProgress?.(d, t),
      });
      const improved = val.dice > bestDice;
      if (improved) {
        bestDice = val.dice;
        bestEpoch = epoch + 1;
        bestCkpt = session.checkpoint();
        bestScores = val.images;
      }
      const epochSeconds = (performance.now() - e0) / 1000;
      seconds += epochSeconds;
      const m: EpochMetrics = {
        epoch: epoch + 1,
        lr,
        trainLoss: sum.loss / seen,
        trainBce: sum.bce / seen,
        trainDiceLoss: sum.dice / seen,
        trainFocal: sum.focal / seen,
        valDice: val.dice,
        valDiceOriginal: val.diceOriginal ?? Number.NaN,
        trainImagesPerSecond: seen / trainSeconds,
        seconds: epochSeconds,
        best: improved,
      };
      history.push(m);
      if (improved) await saveRunCheckpoint(bestPath, runState(epoch + 1), bestCkpt!);
      await saveRunCheckpoint(lastPath, runState(epoch + 1), session.checkpoint());
      void stepTime;
      obs.epochEnd?.(m);
    }

    // ---- best model: final validation, export, report ----
    if (bestCkpt) session.restore(bestCkpt);
    obs.info?.(`best epoch ${bestEpoch}: validating at original resolution and exporting`);
    const overlayIds = pickOverlayExamples(valSet, cfg.overlayExamples, bestScores);
    const overlays: OverlayExample[] = [];
    const parityParts: Float32Array[] = [];
    let parityCount = 0;
    const final = await validate(session, valLoader(true), spec, { threshold: cfg.threshold, minArea: cfg.minArea }, {
      original: true,
      onBatch: (d, t) => obs.validationProgress?.(d, t),
      onPredictions: (batch, probs) => {
        const hw = cfg.height * cfg.width;
        const per = batch.images.length / batch.n;
        for (let k = 0; k < batch.n; k++) {
          const s = batch.samples[k]!;
          if (parityCount < cfg.paritySamples) {
            parityParts.push(batch.images.slice(k * per, (k + 1) * per));
            parityCount++;
          }
          if (overlayIds.has(s.id)) {
            const truth = batch.cached![k]!.mask.slice(0, hw);
            const prob = probs.slice(k * (probs.length / batch.n), k * (probs.length / batch.n) + hw);
            overlays.push({ id: s.id, image: batch.images.slice(k * per, k * per + hw), truth, probability: prob, dice: 0 });
          }
        }
      },
    });
    const scoreOf = new Map(final.images.map((s) => [s.id, s.dice]));
    for (const o of overlays) o.dice = scoreOf.get(o.id) ?? 0;
    overlays.sort((a, b) => Number(b.truth.some((v) => v)) - Number(a.truth.some((v) => v)) || a.dice - b.dice);
    const parityImages = new Float32Array(parityParts.reduce((n, p) => n + p.length, 0));
    parityParts.reduce((off, p) => (parityImages.set(p, off), off + p.length), 0);

    const positives = pos(samples);
    const exported = await exportModel(session, {
      out: resolve(cfg.out),
      parityImages,
      parityCount,
      tolerance: cfg.parityTolerance,
      threads: cfg.threads,
      manifest: {
        name: cfg.name,
        version: cfg.version,
        description: cfg.description || `UNet (depth ${cfg.depth}, base ${cfg.baseChannels}) trained on ${samples.length} ${cfg.layout}-layout images at ${cfg.height}x${cfg.width}`,
        intendedUse: cfg.intendedUse,
        spec,
        threshold: cfg.threshold,
        minArea: cfg.minArea,
        labels: cfg.labels,
        training: {
          dataset: { layout: cfg.layout, images: samples.length, positives, source: basename(scan.root) },
          architecture: { kind: 'unet', depth: cfg.depth, baseChannels: cfg.baseChannels, upsample: cfg.upsample, inChannels: spec.channels, classes: cfg.labels.length, parameters: session.parameterCount, batchNorm: 'folded' },
          epochs: history.length,
          batchSize: cfg.batchSize,
          fold: cfg.fold,
          folds: cfg.folds,
          seed: cfg.seed,
          lossWeights: { ...cfg.loss },
          // The service-path figure (original resolution, min-area gate): what a user of the model gets.
          validationDice: clamp01(final.diceOriginal ?? final.dice),
          bestEpoch,
          device: session.executionProvider,
          durationSeconds: Math.round(seconds),
        },
      },
    });
    const dir = exported.dir;
    const curves = join(dir, 'training-curves.png');
    const overlaysPath = join(dir, 'validation-overlays.png');
    await writeCurvesPng(curves, history, `${cfg.name} v${cfg.version}: fold ${cfg.fold}/${cfg.folds}, ${trainSet.length} train / ${valSet.length} val images`);
    await writeOverlaysPng(overlaysPath, overlays, cfg.height, cfg.width, cfg.threshold);
    const totalSeconds = (performance.now() - t0) / 1000;
    const log = await writeTrainingLog(dir, {
      name: cfg.name,
      version: cfg.version,
      createdAt: new Date().toISOString(),
      config: { ...fingerprint, epochs: cfg.epochs, device: cfg.device, threads: cfg.threads ?? null, threshold: cfg.threshold, minArea: cfg.minArea, labels: cfg.labels },
      preprocessing: spec,
      dataset: {
        layout: cfg.layout,
        source: basename(scan.root),
        counts: scan.counts,
        used: refs.length,
        unreadable: prep.failed.length,
        images: samples.length,
        positives,
        train: { images: trainSet.length, positives: pos(trainSet) },
        validation: { images: valSet.length, positives: pos(valSet) },
      },
      cache: { dtype: cfg.cacheDtype, maxAbsError: quantisationBound(cfg.cacheDtype), hits: prep.hits, misses: prep.misses },
      model: { parameters: session.parameterCount, executionProvider: session.executionProvider, onnxBytes: exported.bytes, sha256: exported.manifest.onnx.sha256, opset: exported.manifest.onnx.opset },
      best: { epoch: bestEpoch, validationDice: final.dice, validationDiceOriginal: final.diceOriginal },
      parity: exported.parity,
      history,
      validationImages: final.images,
      timing: { trainingSeconds: seconds, wallSeconds: totalSeconds, cpus: cpus().length, loadAverageStart: load0, loadAverageEnd: loadavg()[0] },
      resumedFrom: state ? { epochsDone: state.epochsDone } : null,
    });
    return {
      modelDir: dir,
      files: { onnx: exported.onnxPath, manifest: exported.manifestPath, curves, overlays: overlaysPath, log, lastCheckpoint: lastPath, bestCheckpoint: bestPath },
      bestEpoch,
      bestDice: final.dice,
      bestDiceOriginal: final.diceOriginal ?? Number.NaN,
      parity: exported.parity,
      executionProvider: session.executionProvider,
      parameterCount: session.parameterCount,
      seconds: totalSeconds,
      history,
      counts: { ...scan.counts, unreadable: prep.failed.length, train: trainSet.length, val: valSet.length, positives, trainPositives: pos(trainSet), valPositives: pos(valSet) },
      cache: { hits: prep.hits, misses: prep.misses, decodes, dir: cache.dir },
      ...(state && cfg.resume ? { resumedFrom: { path: cfg.resume, epochsDone: state.epochsDone } } : {}),
    };
  } finally {
    await session.release();
  }
}

const clamp01 = (v: number): number => Math.min(1, Math.max(0, v));
const logit = (p: number): number => Math.log(p / (1 - p));

/** Mean fraction of mask pixels over the training images, kept inside [1e-4, 0.5]. */
function foregroundFraction(samples: readonly PreparedSample[]): number {
  let f = 0;
  for (const s of samples) f += s.meta.area / (s.meta.origRows * s.meta.origCols);
  return Math.min(0.5, Math.max(1e-4, f / Math.max(1, samples.length)));
}

/**
 * Sets the output layer's bias to logit(prior) through the checkpoint API (the engine initialises
 * it to zero). Adam moments are still zero at this point, so nothing else changes.
 */
function setOutputPrior(session: TrainingSession, prior: number): boolean {
  const ck = session.checkpoint();
  const bias = ck.tensors['head.bias'];
  if (!bias) return false;
  bias.data.fill(logit(prior));
  session.restore(ck);
  return true;
}

/**
 * Half positives, half negatives. With the best epoch's scores: the worst and the best positives
 * and the negatives with false positives first, so the grid shows failures as well as successes;
 * without them (resumed after the best epoch), the first ones in validation order.
 */
function pickOverlayExamples(val: readonly PreparedSample[], n: number, scores?: readonly ImageScore[]): Set<string> {
  const dice = new Map(scores?.map((s) => [s.id, s.dice]) ?? []);
  const byDice = (ids: string[]): string[] => (scores ? ids.slice().sort((a, b) => (dice.get(a) ?? 1) - (dice.get(b) ?? 1)) : ids);
  const posIds = byDice(val.filter((s) => s.meta.hasMask).map((s) => s.id));
  const negIds = byDice(val.filter((s) => !s.meta.hasMask).map((s) => s.id));
  const nPos = Math.min(posIds.length, Math.max(n - negIds.length, Math.ceil(n / 2)));
  const worst = Math.ceil(nPos / 2);
  const pos = scores ? [...posIds.slice(0, worst), ...posIds.slice(Math.max(worst, posIds.length - (nPos - worst)))] : posIds.slice(0, nPos);
  return new Set([...pos, ...negIds.slice(0, n - pos.length)]);
}
