/**
 * Human progress output for the CLI: messages and per-epoch lines on stdout, warnings on stderr,
 * cli-progress bars on stderr when it is a terminal (when redirected, only lines: logs stay
 * readable and stderr holds nothing but warnings and the error, if any).
 */
import cliProgress from 'cli-progress';
import { formatTerms as formatLosses } from './model/loss-set.ts';
import type { BatchProgress, EpochMetrics, TrainObserver } from './run/types.ts';

export function formatDuration(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/**
 * The per-epoch summary, every line within 80 columns for the single-label terms: epoch, training
 * and validation loss, validation Dice beside the all-empty baseline, best marker; then the training
 * loss terms with the learning rate, throughput and time; then the validation loss terms (under the
 * training ones) and the original-resolution Dice; multi-class runs add each class's Dice.
 */
export function epochLine(m: EpochMetrics, epochs: number): string {
  const fin = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);
  const base = fin(m.valBaseline) ? ` (empty ${m.valBaseline.toFixed(4)})` : '';
  const val = fin(m.valLoss) ? ` val ${m.valLoss.toFixed(4)}` : '';
  const lines = [
    `epoch ${String(m.epoch).padStart(String(epochs).length)}/${epochs}  loss ${m.trainLoss.toFixed(4)}${val}  ` +
      `val Dice ${m.valDice.toFixed(4)}${base}${m.best ? '  * best' : ''}`,
    `  train ${formatLosses(m.trainLosses)}  lr ${m.lr.toExponential(1)}  ${m.trainImagesPerSecond.toFixed(1)} img/s  ${formatDuration(m.seconds)}`,
  ];
  const orig = fin(m.valDiceOriginal) ? `original res ${m.valDiceOriginal.toFixed(4)}` : '';
  const valTerms = m.valLosses ? `val   ${formatLosses(m.valLosses)}` : '';
  if (valTerms || orig) lines.push(`  ${[valTerms, orig].filter(Boolean).join('  ')}`);
  // Multi-class: each non-background class's mean Dice.
  if (m.valClassDice) lines.push(`  class Dice ${formatLosses(m.valClassDice)}`);
  return lines.join('\n');
}

/** Without a terminal, the in-epoch progress line (within 80 columns; the terms are in the epoch's summary). */
export function batchLine(p: BatchProgress, epochs: number): string {
  return `  epoch ${p.epoch}/${epochs}: batch ${p.batch}/${p.batches}  loss ${p.loss.toFixed(4)}  lr ${p.lr.toExponential(1)}  ${p.imagesPerSecond.toFixed(1)} img/s`;
}

/**
 * The terminal bar during an epoch's training steps (its Dice is the last validation Dice, '-' before
 * the first) and during validation: at most 80 columns with the widest values it shows.
 */
export const TRAIN_BAR = 'ep {ep} [{bar}] {value}/{total} loss {loss} Dice {dice} {ips}/s ETA {eta_formatted}';
export const VAL_BAR = 'ep {ep} val [{bar}] {value}/{total} batches | last Dice {dice} | ETA {eta_formatted}';
export const BAR_SIZE = 10;

export function createConsoleObserver(out: NodeJS.WritableStream = process.stdout, stream: NodeJS.WriteStream = process.stderr): TrainObserver & { stop(): void } {
  const tty = Boolean(stream.isTTY);
  let bar: cliProgress.SingleBar | undefined;
  let epochs = 0;
  let epochNo = 0;
  let validating = false;
  /** The last validation Dice, shown in the bar. */
  let lastDice = '-';
  let lastDecile = -1;
  let lastLine = 0;
  /** Without a terminal, in-epoch progress is a line at most this often. */
  const LINE_EVERY_MS = 30_000;
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
  };
  const newBar = (format: string, total: number, payload: Record<string, unknown>): void => {
    stop();
    if (!tty) return;
    bar = new cliProgress.SingleBar({ format, stream, hideCursor: true, clearOnComplete: true, barsize: BAR_SIZE, fps: 5 }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, payload);
  };
  const line = (s: string, to: NodeJS.WritableStream = out): void => {
    // Clear the bar's line first; it redraws on its next update.
    if (bar) stream.write('\r\x1b[2K');
    to.write(s + '\n');
  };
  return {
    stop,
    info: (m) => line(m),
    warn: (m) => line(`warning: ${m}`, stream),
    cacheStart: (total) => {
      lastDecile = -1;
      newBar('cache     [{bar}] {value}/{total} images | {hits} reused | ETA {eta_formatted}', total, { hits: 0 });
    },
    cacheProgress: (done, total, hits) => {
      if (bar) bar.update(done, { hits });
      else {
        const d = Math.floor((10 * done) / total);
        if (d !== lastDecile && (d > lastDecile || done === total)) {
          lastDecile = d;
          if (done === total || d % 2 === 0) out.write(`cache: ${done}/${total} images (${hits} reused)\n`);
        }
      }
    },
    cacheEnd: stop,
    epochStart: (epoch, n, batches) => {
      epochs = n;
      epochNo = epoch;
      validating = false;
      lastLine = Date.now();
      newBar(TRAIN_BAR, batches, { ep: `${epoch}/${n}`, loss: '-', dice: lastDice, ips: '-' });
    },
    batch: (p: BatchProgress) => {
      if (bar) bar.update(p.batch, { loss: p.loss.toFixed(4), ips: p.imagesPerSecond.toFixed(1) });
      else if (Date.now() - lastLine >= LINE_EVERY_MS && p.batch < p.batches) {
        lastLine = Date.now();
        out.write(batchLine(p, epochs) + '\n');
      }
    },
    validationProgress: (done, total) => {
      if (!tty) return;
      if (!validating) {
        validating = true;
        newBar(VAL_BAR, total, { ep: `${epochNo}/${epochs}`, dice: lastDice });
      }
      bar?.update(done);
    },
    epochEnd: (m) => {
      stop();
      lastDice = m.valDice.toFixed(4);
      out.write(epochLine(m, epochs) + '\n');
    },
  };
}
