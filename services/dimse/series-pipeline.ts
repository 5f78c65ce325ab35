/**
 * What happens to a complete series: segmentInstances (services/series/segment-instances.ts, the one
 * series path every route uses) makes its SEG, then the SEG goes to DIMSE_DESTINATION by C-STORE with
 * retries. Series run one at a time, in completion order: the engine batches a series' frames itself,
 * and one series at a time keeps a burst of pushes from filling the engine queue that HTTP clients share.
 *
 * Nothing is lost silently: every series ends in exactly one log line at info (SEG stored), warn (not
 * segmented: over a limit, bad input, shutdown) or error (segmentation failed, SEG not delivered, with
 * the SEG's SOP Instance UID), and in the metrics. Logs carry UIDs, counts and timings, never patient
 * attributes.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Engine } from '../../core/engine/index.ts';
import { parseModelRef } from '../../core/engine/repository.ts';
import type { DimseMetrics } from '../metrics.ts';
import { segmentInstances, SeriesInputError } from '../series/segment-instances.ts';
import type { DimseConfig } from './config.ts';
import type { ByteBudget, CompleteSeries } from './series-buffer.ts';
import { storeWithRetry, StoreScuError } from './store-scu.ts';

export interface SeriesPipelineOptions {
  config: DimseConfig;
  /** The engine, once started. */
  engine(): Engine | undefined;
  budget: ByteBudget;
  log: Logger;
  metrics: DimseMetrics;
}

const round = (ms: number) => Math.round(ms);

export class SeriesPipeline {
  private readonly queue: CompleteSeries[] = [];
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly o: SeriesPipelineOptions) {}

  /** Series waiting or being processed. */
  get pending(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  push(series: CompleteSeries): void {
    if (this.abort.signal.aborted) {
      this.drop(series, 'the service is shutting down');
      return;
    }
    this.queue.push(series);
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
      for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops: queued series are dropped (logged), the running one is aborted (engine work and send). */
  async close(): Promise<void> {
    this.abort.abort();
    for (const s of this.queue.splice(0)) this.drop(s, 'the service is shutting down');
    await this.running;
  }

  private drop(s: CompleteSeries, why: string): void {
    this.o.budget.release(s.bytes);
    this.o.metrics.series('failed');
    this.o.log.warn({ seriesInstanceUid: s.seriesInstanceUid, instances: s.instances.length }, `series not segmented: ${why}`);
  }

  private async drain(): Promise<void> {
    for (let s = this.queue.shift(); s; s = this.queue.shift()) {
      try {
        await this.run(s);
      } catch (e) {
        // run() handles its own failures; this is a last line so the loop (and the process) survive a bug.
        this.o.log.error({ seriesInstanceUid: s.seriesInstanceUid, err: { message: (e as Error).message } }, 'DIMSE series processing failed unexpectedly');
      }
    }
  }

  private async run(s: CompleteSeries): Promise<void> {
    const { config: c, log, metrics, budget } = this.o;
    const signal = this.abort.signal;
    const t0 = performance.now();
    const ids = { seriesInstanceUid: s.seriesInstanceUid, studyInstanceUid: s.studyInstanceUid };
    const engine = this.o.engine();
    if (!engine) {
      budget.release(s.bytes);
      metrics.series('failed');
      log.error({ ...ids, instances: s.instances.length }, 'series not segmented: the engine is not running');
      return;
    }
    const ref: { name?: string; version?: string } = c.model ? parseModelRef(c.model) : {};
    let segmented;
    try {
      segmented = await segmentInstances(engine, s.instances, { maxInstances: c.maxInstances, maxFrames: c.maxFrames, model: ref.name, version: ref.version, signal });
    } catch (e) {
      const err = e as Error;
      if (signal.aborted) {
        metrics.series('failed');
        log.warn({ ...ids, instances: s.instances.length }, 'series not segmented: the service is shutting down');
      } else if (e instanceof SeriesInputError) {
        metrics.series(e.kind === 'too-many' ? 'refused' : 'failed');
        log.warn({ ...ids, instances: s.instances.length, reason: e.kind }, `series not segmented: ${err.message}`);
      } else {
        metrics.series('failed');
        log.error({ ...ids, instances: s.instances.length, err: { message: err.message, code: (err as { code?: string }).code } }, 'series segmentation failed');
      }
      return;
    } finally {
      budget.release(s.bytes);
    }
    metrics.series('segmented');
    const seg = segmented.seg;
    const segIds = { ...ids, segSopInstanceUid: seg.sopInstanceUid, segSeriesInstanceUid: seg.seriesInstanceUid };
    const d = c.destination!;
    const destination = `${d.aeTitle}@${d.host}:${d.port}`;
    const tSegmented = performance.now();
    log.info(
      { ...segIds, trigger: s.trigger, instances: segmented.instances, frames: segmented.frames.length, segFrames: seg.frames.length, segBytes: seg.bytes.length, model: `${segmented.model.name}:${segmented.model.version}`, timings: { segmentMs: round(segmented.timings.segmentMs), writeMs: round(segmented.timings.writeMs) } },
      'series segmented; sending its SEG',
    );
    budget.force(seg.bytes.length);
    try {
      const { attempts } = await storeWithRetry(seg.bytes, {
        destination: d,
        callingAeTitle: c.aeTitle,
        associationTimeoutMs: c.associationTimeoutMs,
        idleTimeoutMs: c.idleTimeoutMs,
        retries: c.sendRetries,
        retryDelayMs: c.sendRetryDelayMs,
        signal,
        onRetry: (attempt, error, delayMs) => log.warn({ ...segIds, destination, attempt, reason: error.kind, status: error.status, retryInMs: delayMs, err: { message: error.message } }, 'SEG send failed; retrying'),
      });
      const tStored = performance.now();
      metrics.segSend('ok', (tStored - t0) / 1000);
      log.info({ ...segIds, destination, attempts, timings: { totalMs: round(tStored - t0), sendMs: round(tStored - tSegmented) } }, 'SEG stored at the destination');
    } catch (e) {
      const err = e instanceof StoreScuError ? e : new StoreScuError('unreachable', (e as Error).message);
      metrics.segSend('failed');
      log.error(
        { ...segIds, destination, attempts: err.attempts, reason: err.kind, status: err.status, err: { message: err.message } },
        signal.aborted ? 'SEG not delivered: the service shut down before the send completed' : 'SEG not delivered: the destination refused it or is unreachable (retries exhausted); send the series again to retry',
      );
    } finally {
      budget.release(seg.bytes.length);
    }
  }
}
