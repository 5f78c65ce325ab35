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

export function epochLine(m: EpochMetrics, epochs: number): string {
  const orig = Number.isFinite(m.valDiceOriginal) ? ` (original res ${m.valDiceOriginal.toFixed(4)})` : '';
  // Multi-class: each non-background class's mean Dice after the mean over them.
  const perClass = m.valClassDice ? ` [${formatLosses(m.valClassDice)}]` : '';
  return (
    `epoch ${String(m.epoch).padStart(String(epochs).length)}/${epochs}  loss ${m.trainLoss.toFixed(4)} ` +
    `[${formatLosses(m.trainLosses)}]  ` +
    `val Dice ${m.valDice.toFixed(4)}${perClass}${orig}  lr ${m.lr.toExponential(2)}  ${m.trainImagesPerSecond.toFixed(1)} img/s  ${formatDuration(m.seconds)}${m.best ? '  * best' : ''}`
  );
}

export function createConsoleObserver(out: NodeJS.WritableStream = process.stdout, stream: NodeJS.WriteStream = process.stderr): TrainObserver & { stop(): void } {
  const tty = Boolean(stream.isTTY);
  let bar: cliProgress.SingleBar | undefined;
  let epochs = 0;
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
    bar = new cliProgress.SingleBar({ format, stream, hideCursor: true, clearOnComplete: true, barsize: 24, fps: 5 }, cliProgress.Presets.shades_classic);
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
    epochStart: (epoch, n, batches, lr) => {
      epochs = n;
      lastLine = Date.now();
      newBar(`epoch ${epoch}/${n} [{bar}] {value}/{total} | loss {loss} [{terms}] | Dice {dice} | lr {lr} | {ips} img/s | ETA {eta_formatted}`, batches, {
        loss: '-',
        terms: '-',
        dice: '-',
        lr: lr.toExponential(1),
        ips: '-',
      });
    },
    batch: (p: BatchProgress) => {
      if (bar) bar.update(p.batch, { loss: p.loss.toFixed(4), terms: formatLosses(p.losses, 3), ips: p.imagesPerSecond.toFixed(1) });
      else if (Date.now() - lastLine >= LINE_EVERY_MS && p.batch < p.batches) {
        lastLine = Date.now();
        out.write(`  epoch ${p.epoch}: batch ${p.batch}/${p.batches}  loss ${p.loss.toFixed(4)} [${formatLosses(p.losses)}]  lr ${p.lr.toExponential(2)}  ${p.imagesPerSecond.toFixed(1)} img/s\n`);
      }
    },
    validationProgress: (done, total) => {
      if (bar) bar.update(bar.getTotal(), { dice: `validating ${done}/${total}` });
    },
    epochEnd: (m) => {
      stop();
      out.write(epochLine(m, epochs) + '\n');
    },
  };
}
