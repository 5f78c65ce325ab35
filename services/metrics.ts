import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EngineObserver, ModelInfo } from '../core/engine/index.ts';
import type { Timings } from '../core/segmentation/records.ts';

/**
 * Prometheus metrics for one service instance. A registry per instance (not prom-client's global
 * one) so tests can build several apps in one process without "metric already registered".
 */
export interface ServiceMetrics {
  registry: Registry;
  observer: EngineObserver;
  httpRequest(method: string, route: string, status: number, seconds: number): void;
  /**
   * One request that reached the engine. `model` may come from the client (`?model=`): a name that is
   * not a served model is counted as `unknown`, so made-up names never create series. With `timings`
   * (a finished segmentation) its queue time goes into the queue-time histogram.
   */
  segmentation(model: string, outcome: 'ok' | 'error', timings?: Pick<Timings, 'queueMs'>): void;
  /** Re-publishes model readiness and execution providers; call after start and every reload. */
  setModels(models: ModelInfo[], requestedProvider: string): void;
  /** Queue depth is sampled from the engine at scrape time, so it is always current. */
  setQueueDepthSource(fn: () => number): void;
  /** DIMSE (services/dimse): associations, C-STOREs received, series segmented, SEG sends. */
  dimse: DimseMetrics;
}

export interface DimseMetrics {
  association(outcome: 'accepted' | 'rejected'): void;
  /** One C-STORE request answered: stored (success) or refused (any failure status). */
  instance(outcome: 'stored' | 'refused'): void;
  /** One received series: segmented, refused (over a limit) or failed (not segmented: bad input, engine error, shutdown). */
  series(outcome: 'segmented' | 'refused' | 'failed'): void;
  /** One SEG's send, after its retries: ok (with the seconds from series complete to SEG stored) or failed. */
  segSend(outcome: 'ok' | 'failed', seconds?: number): void;
}

/** Every metric of ours starts with this; the Node process defaults (process_*, nodejs_*) keep their standard names. */
export const METRIC_PREFIX = 'unet_';
/** The `model` label of a request for a model the server does not serve. */
export const UNKNOWN_MODEL = 'unknown';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const STAGE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const name = (n: string) => METRIC_PREFIX + n;

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): ServiceMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  /** Served model names (every version's name), the only values a `model` label takes besides `unknown`. */
  let known = new Set<string>();
  const bounded = (model: string) => (known.has(model) ? model : UNKNOWN_MODEL);

  const httpRequests = new Counter({
    name: name('http_requests_total'),
    help: 'HTTP requests by method, route pattern (never the raw path; "unmatched" for 404s) and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: name('http_request_duration_seconds'),
    help: 'HTTP request duration by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const segmentations = new Counter({
    name: name('segmentations_total'),
    help: 'Segmentation requests (POST /segment, OIP infer) that reached the engine, by model (unknown for a name the server does not serve) and outcome.',
    labelNames: ['model', 'outcome'] as const,
    registers: [registry],
  });
  const queueTime = new Histogram({
    name: name('inference_queue_seconds'),
    help: 'Time a preprocessed image waited for its batch to start running, by model.',
    labelNames: ['model'] as const,
    buckets: STAGE_BUCKETS,
    registers: [registry],
  });
  let queueDepthSource: (() => number) | undefined;
  let lastQueueDepth = 0;
  new Gauge({
    name: name('inference_queue_depth'),
    help: 'Requests waiting for an inference worker (sampled at scrape time).',
    registers: [registry],
    collect() {
      this.set(queueDepthSource ? queueDepthSource() : lastQueueDepth);
    },
  });
  const batchSize = new Histogram({
    name: name('inference_batch_size'),
    help: 'Images per ONNX Runtime run, by model.',
    labelNames: ['model'] as const,
    buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64],
    registers: [registry],
  });
  const inference = new Histogram({
    name: name('inference_duration_seconds'),
    help: 'ONNX Runtime run time per batch, by model and execution provider.',
    labelNames: ['model', 'provider'] as const,
    buckets: STAGE_BUCKETS,
    registers: [registry],
  });
  const decode = new Histogram({
    name: name('dicom_decode_duration_seconds'),
    help: 'DICOM parse + pixel decode time per image.',
    buckets: STAGE_BUCKETS,
    registers: [registry],
  });
  const preprocess = new Histogram({
    name: name('preprocess_duration_seconds'),
    help: 'Intensity mapping + resize time per image.',
    buckets: STAGE_BUCKETS,
    registers: [registry],
  });
  const provider = new Gauge({
    name: name('model_execution_provider_info'),
    help: 'Always 1, one series per loaded model version: the ONNX Runtime execution provider running it and the one requested (they differ after a CUDA -> CPU fallback).',
    labelNames: ['model', 'version', 'provider', 'requested'] as const,
    registers: [registry],
  });
  const ready = new Gauge({
    name: name('model_ready'),
    help: 'Whether a model version is loaded and warmed (1) or not (0).',
    labelNames: ['model', 'version'] as const,
    registers: [registry],
  });

  const dimseAssociations = new Counter({
    name: name('dimse_associations_total'),
    help: 'DIMSE associations requested of the C-STORE SCP, by outcome (accepted, rejected: unknown AE title, over the limit, not ready).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const dimseInstances = new Counter({
    name: name('dimse_instances_received_total'),
    help: 'C-STORE requests answered by the SCP, by outcome (stored, refused).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const dimseSeries = new Counter({
    name: name('dimse_series_total'),
    help: 'Series received over DIMSE, by outcome (segmented; refused: over a limit; failed: not segmented).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const dimseSeriesSeconds = new Histogram({
    name: name('dimse_series_seconds'),
    help: 'Time from a received series being complete to its SEG stored at the destination (segmentation + send, retries included).',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const dimseSegSends = new Counter({
    name: name('dimse_seg_sends_total'),
    help: 'SEGs sent with C-STORE to DIMSE_DESTINATION, by final outcome after retries (ok, failed).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });

  const observer: EngineObserver = {
    batch: (model, size) => batchSize.observe({ model: bounded(model) }, size),
    inference: (model, prov, seconds) => inference.observe({ model: bounded(model), provider: prov }, seconds),
    decode: (seconds) => decode.observe(seconds),
    preprocess: (seconds) => preprocess.observe(seconds),
    queueDepth: (depth) => {
      lastQueueDepth = depth;
    },
  };

  return {
    registry,
    observer,
    httpRequest(method, route, status, seconds) {
      const labels = { method, route, status: String(status) };
      httpRequests.inc(labels);
      httpDuration.observe(labels, seconds);
    },
    segmentation(model, outcome, timings) {
      const label = bounded(model);
      segmentations.inc({ model: label, outcome });
      if (timings) queueTime.observe({ model: label }, timings.queueMs / 1000);
    },
    setModels(models, requested) {
      known = new Set(models.map((m) => m.name));
      provider.reset();
      ready.reset();
      for (const m of models) {
        ready.set({ model: m.name, version: m.version }, m.ready ? 1 : 0);
        if (m.executionProvider) provider.set({ model: m.name, version: m.version, provider: m.executionProvider, requested }, 1);
      }
    },
    setQueueDepthSource(fn) {
      queueDepthSource = fn;
    },
    dimse: {
      association: (outcome) => dimseAssociations.inc({ outcome }),
      instance: (outcome) => dimseInstances.inc({ outcome }),
      series: (outcome) => dimseSeries.inc({ outcome }),
      segSend(outcome, seconds) {
        dimseSegSends.inc({ outcome });
        if (seconds !== undefined) dimseSeriesSeconds.observe(seconds);
      },
    },
  };
}
