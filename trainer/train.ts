/**
 * One training run, start to finish, read top to bottom: prepare the data (scan -> cache ->
 * stratified fold -> loaders), restore the run (or start fresh), then per epoch fit -> evaluate
 * (validation Dice and loss) -> checkpoint -> live curves and scalars, and finally restore the best
 * epoch -> export with parity check -> report. The steps live in run/; the CLI is a thin layer over
 * `train`, and tests call it directly with a silent observer.
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { isMulticlass, resolveClasses, validateConfig, type TrainConfig } from './config.ts';
import { assertVersionFree } from './export.ts';
import { readClasses } from './data/scan.ts';
import { lossSet } from './model/loss-set.ts';
import { evaluate, fitEpoch } from './run/fit.ts';
import { finalise } from './run/finalise.ts';
import { makeLoaders, prepareData, resolveNormalisation } from './run/prepare.ts';
import { openSession, restoreRun, saveEpoch, startWeights } from './run/restore.ts';
import type { EpochMetrics, TrainDeps, TrainObserver, TrainResult } from './run/types.ts';
import { writeEpochReport } from './report.ts';
import { learningRate } from './schedule.ts';

export type { BatchProgress, EpochMetrics, TrainDeps, TrainObserver, TrainResult } from './run/types.ts';

export async function train(cfgIn: TrainConfig, obs: TrainObserver = {}, deps: TrainDeps = {}): Promise<TrainResult> {
  // Multi-class: the classes (and so the model's output channels) come from the dataset's classes.json.
  const cfg = await resolveClasses(cfgIn, readClasses);
  validateConfig(cfg);
  // Refused before hours of training, not after; checked again when the model is written.
  await assertVersionFree(resolve(cfg.out), cfg.name, cfg.version, cfg.force);
  const terms = lossSet(isMulticlass(cfg));
  const start = { t0: performance.now(), load0: loadavg()[0]! };

  const data = await prepareData(cfg, obs, deps);
  const run = await restoreRun(cfg, obs);
  run.normalisation = await resolveNormalisation(cfg, data, run.normalisation, obs);
  const loaders = makeLoaders(cfg, data, run.normalisation);

  const session = await openSession(cfg, loaders.spec, deps, obs);
  try {
    startWeights(session, cfg, run, data.trainSet, obs);
    const schedule = { lr: cfg.lr, milestones: cfg.milestones, gamma: cfg.gamma };
    for (let epoch = run.startEpoch; epoch < cfg.epochs; epoch++) {
      const e0 = performance.now();
      const lr = learningRate(schedule, epoch);
      const fit = await fitEpoch(session, loaders.train, epoch, lr, cfg.epochs, obs, terms);
      run.globalStep += fit.steps;
      const val = await evaluate(session, loaders.val(cfg.validateOriginalEachEpoch), loaders.spec, cfg, obs, cfg.validateOriginalEachEpoch);

      const improved = val.dice > run.bestDice;
      if (improved) {
        run.bestDice = val.dice;
        run.bestEpoch = epoch + 1;
        run.bestCheckpoint = session.checkpoint();
        run.bestScores = val.images;
      }
      const seconds = (performance.now() - e0) / 1000;
      run.seconds += seconds;
      const m: EpochMetrics = {
        epoch: epoch + 1,
        lr,
        trainLoss: fit.loss,
        trainLosses: fit.losses,
        valLoss: val.loss,
        valLosses: val.losses,
        valDice: val.dice,
        valBaseline: val.baseline,
        valDiceOriginal: val.diceOriginal ?? Number.NaN,
        ...(val.classDice ? { valClassDice: val.classDice } : {}),
        ...(val.classDiceOriginal ? { valClassDiceOriginal: val.classDiceOriginal } : {}),
        trainImagesPerSecond: fit.images / fit.seconds,
        seconds,
        best: improved,
      };
      run.history.push(m);
      await saveEpoch(run, session, epoch + 1, improved);
      // Live view: curves and scalars in the work directory, rewritten every epoch.
      await writeEpochReport(resolve(cfg.workDir), run.history, `${cfg.name} v${cfg.version}: fold ${cfg.fold}/${cfg.folds} (epoch ${epoch + 1}/${cfg.epochs})`, terms);
      obs.epochEnd?.(m);
    }
    return await finalise(session, cfg, data, loaders, run, obs, start);
  } finally {
    await session.release();
  }
}
