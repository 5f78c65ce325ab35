/**
 * Where a run starts and how it is saved: a fresh run (output bias set to the foreground prior) or
 * one resumed from its last.ckpt (weights, Adam state, history and best model restored, after the
 * options that change what an epoch computes were checked to match), and the per-epoch
 * checkpoints that make the next resume exact.
 */
import { access } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import pino from 'pino';
import type { PreprocessSpec } from '../../core/preprocess/spec.ts';
import { fingerprintMismatch, loadRunCheckpoint, ResumeError, saveRunCheckpoint, type RunState } from '../checkpoint-file.ts';
import { isMulticlass, resumeFingerprint, type TrainConfig } from '../config.ts';
import type { PreparedSample } from '../data/cache.ts';
import type { Normalisation } from '../data/loader.ts';
import { createTrainingSession } from '../session/training-session.ts';
import type { Checkpoint, TrainingSession } from '../session/types.ts';
import type { ImageScore } from '../validate.ts';
import { type EpochMetrics, type TrainDeps, type TrainObserver } from './types.ts';

/** The run's progress: what last.ckpt holds, plus the best model. */
export interface Run {
  fingerprint: Record<string, unknown>;
  /** Epochs done before this process started (0 for a fresh run). */
  startEpoch: number;
  history: EpochMetrics[];
  bestEpoch: number;
  bestDice: number;
  globalStep: number;
  /** Training seconds over all processes of the run. */
  seconds: number;
  normalisation: Normalisation | null;
  resumeCheckpoint?: Checkpoint;
  bestCheckpoint?: Checkpoint;
  /** Per-image scores of the best epoch (this process only), to pick informative overlay examples. */
  bestScores?: ImageScore[];
  resumedFrom?: { path: string; epochsDone: number };
  paths: { last: string; best: string };
}

const exists = (p: string): Promise<boolean> => access(p).then(
  () => true,
  () => false,
);

export async function restoreRun(cfg: TrainConfig, obs: TrainObserver): Promise<Run> {
  const work = resolve(cfg.workDir);
  const run: Run = { fingerprint: resumeFingerprint(cfg), startEpoch: 0, history: [], bestEpoch: 0, bestDice: -1, globalStep: 0, seconds: 0, normalisation: null, paths: { last: join(work, 'last.ckpt'), best: join(work, 'best.ckpt') } };
  if (!cfg.resume) return run;
  const { state, checkpoint } = await loadRunCheckpoint(cfg.resume);
  const diff = fingerprintMismatch(state.fingerprint, run.fingerprint);
  if (diff) throw new ResumeError(`cannot resume from ${cfg.resume}: ${diff}; pass the options of the original run`);
  if (state.epochsDone >= cfg.epochs) throw new ResumeError(`checkpoint ${cfg.resume} already has ${state.epochsDone} epoch(s); pass --epochs greater than that to continue`);
  Object.assign(run, {
    startEpoch: state.epochsDone,
    history: state.history,
    bestEpoch: state.bestEpoch,
    bestDice: state.bestDice,
    globalStep: state.globalStep,
    seconds: state.seconds,
    normalisation: state.normalisation,
    resumeCheckpoint: checkpoint,
    resumedFrom: { path: cfg.resume, epochsDone: state.epochsDone },
  });
  if (state.bestEpoch > 0) {
    const bestPath = join(dirname(cfg.resume), 'best.ckpt');
    if (!(await exists(bestPath))) throw new ResumeError(`cannot resume: ${bestPath} (best epoch ${state.bestEpoch}) is missing next to ${cfg.resume}`);
    run.bestCheckpoint = (await loadRunCheckpoint(bestPath)).checkpoint;
    // A run continued in another work directory takes its best model along.
    if (resolve(dirname(cfg.resume)) !== work) await saveRunCheckpoint(run.paths.best, runState(run, run.startEpoch), run.bestCheckpoint);
  }
  obs.info?.(`resuming from ${cfg.resume}: ${state.epochsDone} epoch(s) done, best validation Dice ${state.bestDice.toFixed(4)} at epoch ${state.bestEpoch}`);
  return run;
}

function runState(run: Run, epochsDone: number): RunState {
  return {
    format: 'unet-train-state-v1',
    epochsDone,
    globalStep: run.globalStep,
    history: run.history,
    bestEpoch: run.bestEpoch,
    bestDice: run.bestDice,
    normalisation: run.normalisation,
    fingerprint: run.fingerprint,
    seconds: run.seconds,
    savedAt: new Date().toISOString(),
  };
}

/** After an epoch: best.ckpt when it improved, last.ckpt always. */
export async function saveEpoch(run: Run, session: TrainingSession, epochsDone: number, improved: boolean): Promise<void> {
  if (improved) await saveRunCheckpoint(run.paths.best, runState(run, epochsDone), run.bestCheckpoint!);
  await saveRunCheckpoint(run.paths.last, runState(run, epochsDone), session.checkpoint());
}

export async function openSession(cfg: TrainConfig, spec: PreprocessSpec, deps: TrainDeps, obs: TrainObserver): Promise<TrainingSession> {
  const session = await createTrainingSession({
    unet: { depth: cfg.depth, baseChannels: cfg.baseChannels, inChannels: spec.channels, classes: cfg.labels.length, upsample: cfg.upsample },
    height: cfg.height,
    width: cfg.width,
    loss: cfg.loss,
    // Multi-class layouts: softmax over the classes, class 0 (classes.json's first) the background.
    ...(isMulticlass(cfg) ? { softmax: { background: 0 } } : {}),
    adam: { weightDecay: cfg.weightDecay },
    device: cfg.device,
    deviceId: cfg.deviceId,
    seed: cfg.seed,
    intraOpThreads: cfg.threads,
    // The engine logs session set-up at info; a run only wants its warnings (e.g. the CUDA fallback).
    logger: deps.logger ?? pino({ level: 'warn' }),
  });
  const fallback = cfg.device === 'cuda' && session.executionProvider !== 'cuda' ? ' (CUDA requested but unavailable: running on CPU)' : '';
  obs.info?.(`model: UNet depth ${cfg.depth}, base ${cfg.baseChannels} channels, ${session.parameterCount.toLocaleString('en-US')} parameters; execution provider ${session.executionProvider.toUpperCase()}${fallback}`);
  return session;
}

/** The resumed weights, or fresh ones with the output bias at the foreground prior. */
export function startWeights(session: TrainingSession, cfg: TrainConfig, run: Run, trainSet: readonly PreparedSample[], obs: TrainObserver): void {
  if (run.resumeCheckpoint) return session.restore(run.resumeCheckpoint);
  if (cfg.outputPrior === 'none') return;
  if (isMulticlass(cfg)) {
    const f = classFractions(trainSet, cfg.labels.length);
    if (typeof cfg.outputPrior === 'number') obs.warn?.('a numeric --output-prior is for single-label models; multi-class runs use the class frequencies (auto)');
    if (setOutputBias(session, f.map((p) => Math.log(p)))) obs.info?.(`output bias initialised to log class frequencies of the training fold (${cfg.labels.map((l, c) => `${l} ${f[c]!.toPrecision(3)}`).join(', ')})`);
    else obs.warn?.('the model has no head.bias; --output-prior ignored');
    return;
  }
  const prior = cfg.outputPrior === 'auto' ? foregroundFraction(trainSet) : cfg.outputPrior;
  if (setOutputPrior(session, prior)) obs.info?.(`output bias initialised to logit(${prior.toPrecision(3)}) = ${logit(prior).toFixed(3)} (foreground prior${cfg.outputPrior === 'auto' ? ' of the training fold' : ''})`);
  else obs.warn?.('the model has no head.bias; --output-prior ignored');
}

const logit = (p: number): number => Math.log(p / (1 - p));

/**
 * Multi-class prior: each class's mean pixel fraction over the training images (at least 1e-4, then
 * renormalised), so that softmax(bias) starts at the class frequencies.
 */
function classFractions(samples: readonly PreparedSample[], classes: number): number[] {
  const f = new Array<number>(classes).fill(0);
  for (const s of samples) {
    const n = s.meta.origRows * s.meta.origCols;
    for (let c = 0; c < classes; c++) f[c]! += (s.meta.classAreas?.[c] ?? 0) / n;
  }
  const clamped = f.map((v) => Math.max(1e-4, v / Math.max(1, samples.length)));
  const sum = clamped.reduce((a, b) => a + b, 0);
  return clamped.map((v) => v / sum);
}

/** Sets the output layer's bias, one value per class, through the checkpoint API. */
function setOutputBias(session: TrainingSession, values: readonly number[]): boolean {
  const ck = session.checkpoint();
  const bias = ck.tensors['head.bias'];
  if (!bias || bias.data.length !== values.length) return false;
  bias.data.set(values);
  session.restore(ck);
  return true;
}

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
