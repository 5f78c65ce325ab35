import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EngineObserver, ModelInfo } from '../core/engine/index.ts';

/**
 * Prometheus metrics for one service instance. A registry per instance (not prom-client's global
 * one) so tests can build several apps in one process without "metric already registered".
 */
export interface ServiceMetrics {
  registry: Registry;
  observer: EngineObserver;
  httpRequest(method: string, route: string, status: number, seconds: number): void;
  segmentation(model: string, outcome: 'ok' | 'error'): void;
  /** Re-publishes model readiness and execution providers; call after start and every reload. */
  setModels(models: ModelInfo[], requestedProvider: string): void;
  /** Queue depth is sampled from the engine at scrape time, so it is always current. */
  setQueueDepthSource(fn: () => number): void;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const STAGE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): ServiceMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  const httpRequests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const segmentations = new Counter({
    name: 'segmentations_total',
    help: 'Segmentation requests that reached the engine, by model and outcome.',
    labelNames: ['model', 'outcome'] as const,
    registers: [registry],
  });
  let queueDepthSource: (() => number) | undefined;
  let lastQueueDepth = 0;
  new Gauge({
    name: 'inference_queue_depth',
    help: 'Requests waiting for an inference worker.',
    registers: [registry],
    collect() {
      this.set(queueDepthSource ? queueDepthSource() : lastQueueDepth);
    },
  });
  const batchSize = new Histogram({
    name: 'inference_batch_size',
    help: 'Images per ONNX Runtime run, by model.',
    labelNames: ['model'] as const,
    buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64],
    registers: [registry],
  });
  const inference = new Histogram({
    name: 'inference_duration_seconds',
    help: 'ONNX Runtime run time per batch, by model and execution provider.',
    labelNames: ['model', 'provider'] as const,
    buckets: STAGE_BUCKETS,
    registers: [registry],
  });
  const decode = new Histogram({
    name: 'dicom_decode_duration_seconds',
    help: 'DICOM parse + pixel decode time per image.',
    buckets: STAGE_BUCKETS,
    registers: [registry],
  });
  const preprocess = new Histogram({
    name: 'preprocess_duration_seconds',
    help: 'Intensity mapping + resize time per image.',
    buckets: STAGE_BUCKETS,
    registers: [registry],
  });
  const provider = new Gauge({
    name: 'model_execution_provider',
    help: 'Active ONNX Runtime execution provider per loaded model version (1 = active). requested differs from provider after a CUDA -> CPU fallback.',
    labelNames: ['model', 'version', 'provider', 'requested'] as const,
    registers: [registry],
  });
  const ready = new Gauge({
    name: 'model_ready',
    help: 'Whether a model version is loaded and warmed (1) or not (0).',
    labelNames: ['model', 'version'] as const,
    registers: [registry],
  });

  const observer: EngineObserver = {
    batch: (model, size) => batchSize.observe({ model }, size),
    inference: (model, prov, seconds) => inference.observe({ model, provider: prov }, seconds),
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
    segmentation(model, outcome) {
      segmentations.inc({ model, outcome });
    },
    setModels(models, requested) {
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
  };
}
