import type { FastifyInstance } from 'fastify';
import type { ModelInfo } from '../../core/engine/index.ts';
import { Problem } from '../problem.ts';

const dims = (shape: ReadonlyArray<number | string>) => shape.map((d) => (typeof d === 'number' ? d : -1));

/** The public view of a model: manifest essentials and serving state, never file paths. */
export function modelSummary(m: ModelInfo, requestedProvider: string, isDefault: boolean) {
  const mf = m.manifest;
  return {
    name: m.name,
    version: m.version,
    versions: m.versions,
    default: isDefault,
    ready: m.ready,
    executionProvider: m.executionProvider,
    requestedExecutionProvider: requestedProvider,
    loadedAt: m.loadedAt,
    ...(m.error ? { error: m.error } : {}),
    description: mf.description,
    intendedUse: mf.intendedUse,
    labels: mf.labels,
    input: { name: mf.input.name, layout: mf.input.layout, dtype: mf.input.dtype, shape: dims(mf.input.shape) },
    output: { name: mf.output.name, activation: mf.output.activation, shape: dims(mf.output.shape) },
    preprocessing: mf.preprocessing,
    postprocessing: { threshold: mf.postprocessing.threshold, minArea: mf.postprocessing.minArea },
    ...(mf.training?.validationDice !== undefined ? { validationDice: mf.training.validationDice } : {}),
    ...(mf.createdAt ? { createdAt: mf.createdAt } : {}),
  };
}

/** Open Inference Protocol model metadata (KServe v2): tensors by name, FP32, -1 for dynamic dims. */
function oipMetadata(m: ModelInfo) {
  const mf = m.manifest;
  return {
    name: m.name,
    versions: m.versions,
    platform: 'onnxruntime_onnx',
    inputs: [{ name: mf.input.name, datatype: 'FP32', shape: dims(mf.input.shape) }],
    outputs: [{ name: mf.output.name, datatype: 'FP32', shape: dims(mf.output.shape) }],
  };
}

const nameParam = {
  type: 'object',
  properties: { name: { type: 'string', minLength: 1, maxLength: 128 }, version: { type: 'string', minLength: 1, maxLength: 128 } },
  required: ['name'],
} as const;

/** Runs a repository re-scan and republishes model gauges; shared by POST /admin/reload and SIGHUP. */
export async function reloadModels(app: FastifyInstance) {
  const engine = app.lifecycle.requireEngine();
  const outcome = await engine.reload();
  app.metrics.setModels(engine.models(), app.config.executionProvider);
  if (outcome.failed.length > 0) app.log.warn({ failed: outcome.failed }, 'model reload: some versions failed; previous versions keep serving');
  app.log.info({ loaded: outcome.loaded }, 'model reload finished');
  return outcome;
}

export default async function modelRoutes(app: FastifyInstance): Promise<void> {
  const requested = app.config.executionProvider;
  const lookup = (name: string, version?: string): ModelInfo => {
    const engine = app.lifecycle.requireEngine();
    const m = engine.model(name, version);
    if (!m) throw new Problem('model-not-found', `model ${version ? `${name}:${version}` : name} not found`, { code: 'MODEL_NOT_FOUND' });
    return m;
  };

  app.get('/models', async () => {
    const engine = app.lifecycle.requireEngine();
    const def = engine.defaultModel();
    return {
      defaultModel: def ? def.name : null,
      models: engine.models().map((m) => modelSummary(m, requested, def?.name === m.name && def?.version === m.version)),
    };
  });

  app.get(
    '/models/:name',
    {
      schema: {
        params: nameParam,
        querystring: { type: 'object', properties: { version: { type: 'string', minLength: 1, maxLength: 128 } }, additionalProperties: false },
      },
    },
    async (request) => {
      const { name } = request.params as { name: string };
      const { version } = request.query as { version?: string };
      const m = lookup(name, version);
      const def = app.lifecycle.requireEngine().defaultModel();
      return modelSummary(m, requested, def?.name === m.name && def?.version === m.version);
    },
  );

  app.post('/admin/reload', async () => {
    const outcome = await reloadModels(app);
    const engine = app.lifecycle.requireEngine();
    const def = engine.defaultModel();
    return {
      loaded: outcome.loaded,
      failed: outcome.failed,
      models: engine.models().map((m) => modelSummary(m, requested, def?.name === m.name && def?.version === m.version)),
    };
  });

  // Open Inference Protocol (KServe v2) metadata and readiness.
  app.get('/v2', async () => ({ name: 'unet-seg', version: process.env.npm_package_version ?? '0.1.0', extensions: [] as string[] }));

  const metadata = async (request: { params: unknown }) => {
    const { name, version } = request.params as { name: string; version?: string };
    return oipMetadata(lookup(name, version));
  };
  app.get('/v2/models/:name', { schema: { params: nameParam } }, metadata);
  app.get('/v2/models/:name/versions/:version', { schema: { params: nameParam } }, metadata);

  const modelReady = async (request: { params: unknown }, reply: { code(c: number): unknown }) => {
    const { name, version } = request.params as { name: string; version?: string };
    const m = lookup(name, version);
    const ready = m.ready && app.lifecycle.ready();
    reply.code(ready ? 200 : 503);
    return { name: m.name, ready };
  };
  app.get('/v2/models/:name/ready', { schema: { params: nameParam }, config: { quiet: true } }, modelReady);
  app.get('/v2/models/:name/versions/:version/ready', { schema: { params: nameParam }, config: { quiet: true } }, modelReady);
}
