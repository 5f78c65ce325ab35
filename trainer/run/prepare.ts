/**
 * Data preparation: scan the dataset, fill the tensor cache, split into stratified folds, and (once
 * the run's normalisation is known) build the training and validation loaders.
 */
import { basename, resolve } from 'node:path';
import { PreprocessSpecSchema, type PreprocessSpec } from '../../core/preprocess/spec.ts';
import { isMulticlass, type TrainConfig } from '../config.ts';
import { TensorCache, type PrepareResult, type PreparedSample } from '../data/cache.ts';
import { decodeSample } from '../data/decode.ts';
import { BatchLoader, datasetStatistics, type Normalisation } from '../data/loader.ts';
import { quantisationBound } from '../data/quantize.ts';
import { scanDataset } from '../data/scan.ts';
import { DataError, type DatasetScan } from '../data/types.ts';
import { assignFolds } from '../folds.ts';
import { Stream, shuffled, streamRng } from '../rng.ts';
import type { RunCounts, TrainDeps, TrainObserver } from './types.ts';

export interface PreparedData {
  /** The spec of the cache (no dataset normalisation). */
  baseSpec: PreprocessSpec;
  cache: TensorCache;
  /** Readable labelled samples, split by fold. */
  samples: PreparedSample[];
  trainSet: PreparedSample[];
  valSet: PreparedSample[];
  counts: RunCounts;
  /** For the training log: the dataset folder's name, images used, cache statistics. */
  source: string;
  scanCounts: DatasetScan['counts'];
  used: number;
  cacheStats: { hits: number; misses: number; decodes: number };
  /** Multi-class: images containing each class (all readable samples), by label. */
  classImages?: Record<string, number>;
  /**
   * What folds are stratified on and overlay examples split by: has-mask, or for multi-class data
   * "has the class present in the fewest images" (the one a fold could otherwise miss).
   */
  stratum: (s: PreparedSample) => boolean;
}

export const positives = (xs: readonly PreparedSample[]): number => xs.filter((s) => s.meta.hasMask).length;

/** A class-blind seeded subset (sorted first, so independent of directory order). */
function limitSamples<T extends { id: string }>(items: readonly T[], limit: number | undefined, seed: number): T[] {
  const sorted = items.slice().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (limit === undefined || limit >= sorted.length) return sorted;
  return shuffled(sorted, streamRng(seed, Stream.limit)).slice(0, limit).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function warnScanProblems(cfg: TrainConfig, c: DatasetScan['counts'], obs: TrainObserver): void {
  const siim = cfg.layout === 'siim' || cfg.layout === 'kaggle-multiclass';
  if (c.imagesWithoutLabel) obs.warn?.(`${c.imagesWithoutLabel} image(s) have no label (${siim ? 'not in train-rle.csv' : 'no _mask file'}); skipped`);
  if (c.labelsWithoutImage) obs.warn?.(`${c.labelsWithoutImage} label(s) have no image (${siim ? 'train-rle.csv rows without a .dcm' : '_mask files without an image'}); skipped`);
  if (c.duplicates) obs.warn?.(`${c.duplicates} duplicate id(s); kept the first of each`);
}

/** Decodes what the cache lacks; unreadable images are skipped with one warning. */
async function fillCache(cfg: TrainConfig, cache: TensorCache, refs: DatasetScan['samples'], obs: TrainObserver): Promise<PrepareResult> {
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
  obs.info?.(`cache: ${prep.hits} reused, ${prep.misses} decoded in ${((performance.now() - c0) / 1000).toFixed(1)}s, at ${cache.dir} (${cfg.cacheDtype}, max error ${quantisationBound(cfg.cacheDtype).toExponential(1)})`);
  return prep;
}

export async function prepareData(cfg: TrainConfig, obs: TrainObserver, deps: TrainDeps): Promise<PreparedData> {
  const scan = await scanDataset(cfg.layout, cfg.data);
  if (scan.classes && JSON.stringify(scan.classes) !== JSON.stringify(cfg.classes)) {
    throw new DataError(`${scan.root}/classes.json lists ${scan.classes.join(',')} but the run has classes ${cfg.classes?.join(',')}; train (or resume) with the dataset the run was made for`);
  }
  warnScanProblems(cfg, scan.counts, obs);
  const refs = limitSamples(scan.samples, cfg.limit, cfg.seed);
  obs.info?.(`data: ${scan.samples.length} labelled images in ${scan.root} (${cfg.layout} layout)${refs.length < scan.samples.length ? `, using ${refs.length} (--limit)` : ''}`);

  const baseSpec = PreprocessSpecSchema.parse({ size: { height: cfg.height, width: cfg.width }, resize: cfg.resize, intensity: cfg.intensity, channels: 1 });
  const cacheStats = { hits: 0, misses: 0, decodes: 0 };
  const decode = deps.decode ?? decodeSample;
  const cache = new TensorCache({ dir: resolve(cfg.cacheDir), spec: baseSpec, dtype: cfg.cacheDtype, decode: (r) => (cacheStats.decodes++, decode(r)), ...(isMulticlass(cfg) ? { classes: cfg.labels.length } : {}) });
  const prep = await fillCache(cfg, cache, refs, obs);
  Object.assign(cacheStats, { hits: prep.hits, misses: prep.misses });
  const samples = prep.prepared;
  if (samples.length < cfg.folds) throw new DataError(`only ${samples.length} readable labelled image(s); need at least ${cfg.folds} for ${cfg.folds} folds`);

  let stratum = (s: PreparedSample): boolean => s.meta.hasMask;
  let classImages: Record<string, number> | undefined;
  if (isMulticlass(cfg)) {
    const withClass = cfg.labels.map((_, c) => samples.filter((s) => (s.meta.classAreas?.[c] ?? 0) > 0).length);
    classImages = Object.fromEntries(cfg.labels.map((l, c) => [l, withClass[c]!]));
    // The foreground class present in the fewest images (but in some): folds and overlays split on it.
    const rare = withClass.map((n, c) => ({ n, c })).filter(({ n, c }) => c !== 0 && n > 0).sort((a, b) => a.n - b.n || a.c - b.c)[0]?.c;
    if (rare !== undefined) stratum = (s) => (s.meta.classAreas?.[rare] ?? 0) > 0;
    obs.info?.(`classes: ${cfg.labels.map((l, c) => `${c} ${l} (${withClass[c]} images)`).join(', ')}; background ${cfg.labels[0]}${rare !== undefined ? `; folds stratified on ${cfg.labels[rare]}` : ''}`);
  }
  const foldOf = assignFolds(samples.map((s) => ({ id: s.id, hasMask: stratum(s), ...(s.group !== undefined ? { group: s.group } : {}) })), cfg.folds, cfg.seed);
  const trainSet: PreparedSample[] = [];
  const valSet: PreparedSample[] = [];
  samples.forEach((s, i) => (foldOf[i] === cfg.fold ? valSet : trainSet).push(s));
  obs.info?.(`fold ${cfg.fold}/${cfg.folds}: train ${trainSet.length} (${positives(trainSet)} with mask), validation ${valSet.length} (${positives(valSet)} with mask)`);
  const counts = { ...scan.counts, unreadable: prep.failed.length, train: trainSet.length, val: valSet.length, positives: positives(samples), trainPositives: positives(trainSet), valPositives: positives(valSet) };
  return { baseSpec, cache, samples, trainSet, valSet, counts, source: basename(scan.root), scanCounts: scan.counts, used: refs.length, cacheStats, stratum, ...(classImages ? { classImages } : {}) };
}

/** The training fold's per-channel mean/std with --normalize dataset (kept from the checkpoint on resume), else null. */
export async function resolveNormalisation(cfg: TrainConfig, data: PreparedData, saved: Normalisation | null, obs: TrainObserver): Promise<Normalisation | null> {
  if (saved || cfg.normalize !== 'dataset') return saved;
  const n = await datasetStatistics(data.cache, data.trainSet);
  obs.info?.(`normalisation (training fold): mean ${n.mean.map((v) => v.toFixed(4)).join(',')} std ${n.std.map((v) => v.toFixed(4)).join(',')}`);
  return n;
}

export interface Loaders {
  /** The spec written to model.json: the cache's, plus the normalisation. */
  spec: PreprocessSpec;
  train: BatchLoader;
  /** Validation batches; `original` adds the original-resolution masks. */
  val(original: boolean): BatchLoader;
}

export function makeLoaders(cfg: TrainConfig, data: PreparedData, normalisation: Normalisation | null): Loaders {
  const spec = PreprocessSpecSchema.parse({ ...data.baseSpec, ...(normalisation ? { normalize: normalisation } : {}) });
  const normalize = normalisation ?? undefined;
  const common = { batchSize: cfg.batchSize, seed: cfg.seed, normalize, prefetch: cfg.prefetch };
  const train = new BatchLoader(data.cache, data.trainSet, { ...common, shuffle: true, augment: cfg.augment ?? undefined, minBatch: 2 });
  if (train.batchesPerEpoch() === 0) throw new DataError(`the training fold has ${data.trainSet.length} image(s), fewer than one batch of 2`);
  return { spec, train, val: (original) => new BatchLoader(data.cache, data.valSet, { ...common, shuffle: false, originalMasks: original }) };
}
