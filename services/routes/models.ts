import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ModelInfo, ModelListing } from '../../core/engine/index.ts';
import {
  ModelListSchema,
  ModelParamsSchema,
  ModelQuerySchema,
  ModelSummarySchema,
  ModelVersionParamsSchema,
  OipModelMetadataSchema,
  OipModelReadySchema,
  OipServerMetadataSchema,
  ReloadResultSchema,
  type ModelSummary,
} from '../contract/models.ts';
import { OIP_EXTENSIONS, OIP_OUTPUTS } from '../contract/oip.ts';
import { SERVER_VERSION, TAGS } from '../contract/openapi.ts';
import { guarded, json, Problems } from '../contract/problem.ts';
import { redactPaths } from '../errors.ts';
import { Problem } from '../problem.ts';

const dims = (shape: ReadonlyArray<number | string>) => shape.map((d) => (typeof d === 'number' ? d : -1));

/**
 * The public view of a model: manifest essentials and serving state, never file paths (`repository`:
 * the model repository, cut from any path in an error). A version whose manifest does not validate is
 * listed with `manifest: null`, its status and error, and no manifest fields.
 */
export function modelSummary(m: ModelListing, requestedProvider: ModelSummary['requestedExecutionProvider'], isDefault: boolean, repository?: string): ModelSummary {
  const mf = m.manifest;
  const base = {
    name: m.name,
    version: m.version,
    versions: m.versions,
    default: isDefault,
    ready: m.ready,
    executionProvider: m.executionProvider,
    requestedExecutionProvider: requestedProvider,
    loadedAt: m.loadedAt,
    ...(m.error ? { error: redactPaths(m.error, repository) } : {}),
    status: m.status,
    sha256: m.sha256,
  };
  if (!mf) return { ...base, manifest: null };
  return {
    ...base,
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

/**
 * Open Inference Protocol model metadata (KServe v2): tensors by name, -1 for dynamic dims. The input
 * is the model's (FP32 NCHW; a BYTES input of DICOM files is accepted in its place); the outputs are
 * the ones POST .../infer produces (services/routes/v2-infer.ts), so a client may ask for any of them
 * (and `mask:<label>`).
 */
function oipMetadata(m: ModelInfo) {
  const mf = m.manifest;
  const [, c, h, w] = dims(mf.output.shape);
  return {
    name: m.name,
    versions: m.versions,
    platform: 'onnxruntime_onnx' as const,
    inputs: [{ name: mf.input.name, datatype: 'FP32' as const, shape: dims(mf.input.shape) }],
    outputs: [
      { name: OIP_OUTPUTS.mask, datatype: 'UINT8' as const, shape: [-1, c!, -1, -1] },
      { name: OIP_OUTPUTS.labels, datatype: 'BYTES' as const, shape: [mf.labels.length] },
      { name: OIP_OUTPUTS.probabilities, datatype: 'FP32' as const, shape: [-1, c!, h!, w!] },
    ],
  };
}

/** Runs a repository re-scan and republishes model gauges; shared by POST /admin/reload and SIGHUP. */
export async function reloadModels(app: Pick<FastifyInstance, 'lifecycle' | 'metrics' | 'config' | 'log'>) {
  const engine = app.lifecycle.requireEngine();
  const outcome = await engine.reload();
  app.metrics.setModels(engine.models(), app.config.provider);
  if (outcome.failed.length > 0) app.log.warn({ failed: outcome.failed }, 'model reload: some versions failed; previous versions keep serving');
  app.log.info({ loaded: outcome.loaded }, 'model reload finished');
  return outcome;
}

type ModelsApp = Pick<FastifyInstance, 'lifecycle' | 'config'>;
type ReadyReply = { code(c: number): unknown };

/** Model look-ups for the routes, against the engine and the service's provider and repository. */
interface Models {
  /** Any listed version (invalid manifests included), or 404 naming the models there are. */
  describe(name: string, version?: string): ModelListing;
  /** A version with a manifest (OIP metadata needs its tensors); one whose manifest is invalid is 409. */
  lookup(name: string, version?: string): ModelInfo;
  /** The default model and the public summaries (one version, or all listed). */
  summaries(): { def: ModelInfo | undefined; of(m: ModelListing): ModelSummary; all(): ModelSummary[] };
  /** The service's model repository (to cut from errors). */
  repository: string | undefined;
}

function modelsOf(app: ModelsApp): Models {
  const requested = app.config.provider;
  const repository = app.config.modelRepository;
  const describe = (name: string, version?: string): ModelListing => {
    const engine = app.lifecycle.requireEngine();
    const m = engine.describe(name, version);
    if (!m) {
      const names = [...new Set(engine.listing().map((x) => x.name))];
      throw new Problem('model-not-found', `model ${version ? `${name}:${version}` : name} not found; available models: ${names.length > 0 ? names.join(', ') : '(none)'}`, {
        code: 'MODEL_NOT_FOUND',
      });
    }
    return m;
  };
  const lookup = (name: string, version?: string): ModelInfo => {
    const m = describe(name, version);
    if (!m.manifest) throw new Problem('model-invalid', `model ${m.name}:${m.version} cannot be served: ${redactPaths(m.error ?? 'invalid manifest', repository)}`, { code: 'MODEL_INVALID' });
    return m as ModelInfo;
  };
  const summaries = () => {
    const engine = app.lifecycle.requireEngine();
    const def = engine.defaultModel();
    const isDefault = (m: ModelListing) => def?.name === m.name && def?.version === m.version;
    return {
      def,
      of: (m: ModelListing) => modelSummary(m, requested, isDefault(m), repository),
      all: () => engine.listing().map((m) => modelSummary(m, requested, isDefault(m), repository)),
    };
  };
  return { describe, lookup, summaries, repository };
}

// Schemas.
const tags = [TAGS.models];
const oip = [TAGS.oip];
const unavailable = { 503: Problems.unavailable };

const listModelsSchema = {
  tags,
  operationId: 'listModels',
  summary: 'Models being served',
  description: 'One entry per model (its active, newest loadable version), with execution provider and readiness.',
  response: { 200: json('The models.', ModelListSchema), ...guarded, ...unavailable },
};

const getModelSchema = {
  tags,
  operationId: 'getModel',
  summary: 'One model',
  params: ModelParamsSchema,
  querystring: ModelQuerySchema,
  response: { 200: json('Manifest summary and serving state.', ModelSummarySchema), 400: Problems.badParameter, 404: Problems.modelNotFound, ...guarded, ...unavailable },
};

const reloadSchema = {
  tags,
  operationId: 'reloadModels',
  summary: 'Re-scan the model repository',
  description: `Loads new versions and models found on disk (same as sending SIGHUP). A version that fails to
load (bad manifest, checksum, ONNX) is reported in \`failed\` and the previously active version
of that model keeps serving.`,
  response: { 200: json('What was loaded and what failed.', ReloadResultSchema), ...guarded, ...unavailable },
};

const oipServerSchema = {
  tags: oip,
  operationId: 'oipServerMetadata',
  summary: 'OIP server metadata',
  description: 'Server name, version and the protocol extensions it implements (`binary_tensor_data`: see the infer routes).',
  response: { 200: json('Server name, version and extensions.', OipServerMetadataSchema), ...guarded },
};

const metadataResponses = { 200: json('Model metadata.', OipModelMetadataSchema), 400: Problems.badParameter, 404: Problems.modelNotFound, ...guarded, ...unavailable };
const oipModelSchema = { tags: oip, operationId: 'oipModelMetadata', summary: 'OIP model metadata (active version)', params: ModelParamsSchema, response: metadataResponses };
const oipModelVersionSchema = { tags: oip, operationId: 'oipModelVersionMetadata', summary: 'OIP model metadata (one version)', params: ModelVersionParamsSchema, response: metadataResponses };

const readyResponses = {
  200: json('Ready.', OipModelReadySchema),
  400: Problems.badParameter,
  404: Problems.modelNotFound,
  ...guarded,
  503: {
    description: 'Not ready (failed to load, or the server is loading/draining); a problem if the engine has not started.',
    headers: Problems.unavailable.headers,
    content: { 'application/json': { schema: OipModelReadySchema }, ...Problems.unavailable.content },
  },
};
const oipReadySchema = { tags: oip, operationId: 'oipModelReady', summary: 'OIP model readiness (active version)', params: ModelParamsSchema, response: readyResponses };
const oipVersionReadySchema = { tags: oip, operationId: 'oipModelVersionReady', summary: 'OIP model readiness (one version)', params: ModelVersionParamsSchema, response: readyResponses };

// Handlers.
type ModelRequest = { params: { name: string; version?: string } };

const listModels = (models: Models) => async () => {
  const s = models.summaries();
  return { defaultModel: s.def ? s.def.name : null, models: s.all() };
};

const getModel = (models: Models) => async (request: { params: { name: string }; query: { version?: string } }) =>
  models.summaries().of(models.describe(request.params.name, request.query.version));

const reload = (app: Parameters<typeof reloadModels>[0], models: Models) => async () => {
  const outcome = await reloadModels(app);
  // Failures name the model and version, never the repository's paths (defect 8).
  return { loaded: outcome.loaded, failed: outcome.failed.map((f) => ({ model: f.model, error: redactPaths(f.error, models.repository) })), models: models.summaries().all() };
};

const serverMetadata = async () => ({ name: 'unet-seg', version: SERVER_VERSION, extensions: [...OIP_EXTENSIONS] });

/** GET /v2/models/:name and .../versions/:version (no `version` param: the active version). */
const modelMetadata = (models: Models) => async (request: ModelRequest) => oipMetadata(models.lookup(request.params.name, request.params.version));

/** GET /v2/models/:name/ready and .../versions/:version/ready: 200 when the version and the server are ready, else 503. */
const modelReady = (app: ModelsApp, models: Models) => async (request: ModelRequest, reply: ReadyReply) => {
  const m = models.lookup(request.params.name, request.params.version);
  const ready = m.ready && app.lifecycle.ready();
  reply.code(ready ? 200 : 503);
  return { name: m.name, ready };
};

const modelRoutes: FastifyPluginAsyncZod = async (app) => {
  const models = modelsOf(app);
  app.get('/models', { schema: listModelsSchema }, listModels(models));
  app.get('/models/:name', { schema: getModelSchema }, getModel(models));
  app.post('/admin/reload', { schema: reloadSchema }, reload(app, models));

  // Open Inference Protocol (KServe v2) metadata and readiness.
  app.get('/v2', { schema: oipServerSchema }, serverMetadata);
  app.get('/v2/models/:name', { schema: oipModelSchema }, modelMetadata(models));
  app.get('/v2/models/:name/versions/:version', { schema: oipModelVersionSchema }, modelMetadata(models));
  app.get('/v2/models/:name/ready', { config: { quiet: true }, schema: oipReadySchema }, modelReady(app, models));
  app.get('/v2/models/:name/versions/:version/ready', { config: { quiet: true }, schema: oipVersionReadySchema }, modelReady(app, models));
};
export default modelRoutes;
