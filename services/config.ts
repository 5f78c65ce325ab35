import { z } from 'zod';
import { EngineConfigSchema, type EngineConfig } from '../core/engine/index.ts';
import { DicomwebEnvSchema, dicomwebSettings } from './dicomweb/config.ts';
import { DimseEnvSchema, dimseSettings } from './dimse/config.ts';
import { CorsOriginsSchema } from './cors.ts';
import { envInt } from './env.ts';

/**
 * Service configuration, read once from the environment at start-up. Every variable is validated
 * here so a typo stops the process with one line naming the variable instead of surfacing later as
 * a confusing runtime failure. The engine's variables are parsed by the engine's own schema
 * (core/engine/config.ts: its defaults and bounds); ServiceConfig is what this file's schema
 * produces, not a second declaration.
 */

const MiB = 1024 * 1024;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The engine's variables: each one's text form and the EngineConfig field it sets. */
const ENGINE_VARIABLES = {
  MODEL_REPOSITORY: ['modelRepository', z.string()],
  /** Model used when a request names none; default the only model, or the first ready one by name. */
  DEFAULT_MODEL: ['defaultModel', z.string()],
  EXECUTION_PROVIDER: ['provider', z.string()],
  CUDA_DEVICE_ID: ['deviceId', envInt()],
  /** Inference worker threads (each holds its own ORT sessions); 0 = automatic from the cores and provider. */
  WORKERS: ['workers', envInt()],
  /** ORT intra-op threads per session; 0 = automatic (the cores shared evenly on cpu, 1 on cuda). */
  INTRA_OP_THREADS: ['intraOpThreads', envInt()],
  /** Decode/preprocess-only worker threads; 0 = the inference workers decode between batches. Default: 0 on cpu, the cores left on cuda. */
  PREPARE_WORKERS: ['prepareWorkers', envInt()],
  /** 1: ORT intra-op threads busy-wait between parallel sections (ORT's own default); 0: they sleep. */
  INTRA_OP_SPINNING: ['intraOpSpinning', z.enum(['0', '1']).transform((v) => v === '1')],
  MAX_BATCH: ['maxBatch', envInt()],
  MAX_BATCH_DELAY_MS: ['maxDelayMs', envInt()],
  /** Requests waiting for a worker beyond this are refused with 503 + Retry-After. */
  MAX_QUEUE: ['maxQueue', envInt()],
  /** Decoded image size limit (rows x columns x frames x samples): larger images get 413. */
  MAX_IMAGE_PIXELS: ['maxPixels', envInt()],
  /** Longest one worker task (decode + preprocess of an image, or a batch's inference) may run; past it 503 DEADLINE_EXCEEDED and the worker is replaced. */
  TASK_TIMEOUT_MS: ['taskTimeoutMs', envInt()],
  /** Longest a request may spend in the engine (queue + both tasks); past it 503 DEADLINE_EXCEEDED. */
  REQUEST_TIMEOUT_MS: ['requestTimeoutMs', envInt()],
} as const satisfies Record<string, readonly [keyof EngineConfig, z.ZodType]>;
type EngineVariable = keyof typeof ENGINE_VARIABLES;

const EnvSchema = z.object({
  PORT: envInt(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  ...(Object.fromEntries(Object.entries(ENGINE_VARIABLES).map(([name, [, text]]) => [name, text.optional()])) as {
    [K in EngineVariable]: z.ZodOptional<(typeof ENGINE_VARIABLES)[K][1]>;
  }),
  BODY_LIMIT_BYTES: envInt(1024).default(64 * MiB),
  /** The whole request body must arrive within this (from the end of the headers), else 408 and the connection is closed. */
  BODY_TIMEOUT_MS: envInt(100, 3_600_000).default(60_000),
  /** A request body that sends no byte for this long is answered 408 and its connection closed (slow or stalled uploads). */
  BODY_IDLE_TIMEOUT_MS: envInt(100, 3_600_000).default(10_000),
  /** The request line and headers must arrive within this (Node's headersTimeout). */
  HEADERS_TIMEOUT_MS: envInt(100, 600_000).default(10_000),
  /** A socket with no traffic either way for this long is closed; default REQUEST_TIMEOUT_MS + 30 s (a request may be silent while it runs). */
  CONNECTION_TIMEOUT_MS: envInt(1000, 7_200_000).optional(),
  /** Request bodies being received or held at once, in bytes (Content-Length, else BODY_LIMIT_BYTES each); beyond it 503 + Retry-After. Default 4 x BODY_LIMIT_BYTES. */
  MAX_INFLIGHT_BODY_BYTES: envInt(1024).optional(),
  RESULT_TTL_SECONDS: envInt(1).default(3600),
  RESULT_CACHE_MAX: envInt(1).default(1000),
  /** Longer side of the 8-bit preview behind overlay.png, kept for a POST /segment?preview=true (made by the engine worker from its decode); 0 = keep none (preview=true is refused). */
  PREVIEW_MAX_SIDE: envInt(0, 1024).default(256),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\/.+/, 'must be a redis:// or rediss:// URL')
    .optional(),
  API_TOKEN: z.string().min(8, 'must be at least 8 characters').optional(),
  /** true: /docs (Swagger UI) and /openapi.yaml need no token even when API_TOKEN is set (the page's Authorize button takes it). */
  DOCS_PUBLIC: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  RATE_LIMIT_RPM: envInt(1).optional(),
  /** Web origins whose pages may call the API (browser viewers): `*`, or a comma list such as https://viewer.example.org; unset = no CORS. */
  CORS_ORIGINS: CorsOriginsSchema.optional(),
  DRAIN_TIMEOUT_SECONDS: envInt(1, 3600).default(30),
  /** After SIGTERM, keep listening (readiness already false) this long before closing, for endpoint removal to propagate. */
  SHUTDOWN_DELAY_SECONDS: envInt(0, 600).default(0),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  ...DicomwebEnvSchema.shape,
  // --- DIMSE (services/dimse/config.ts): C-STORE SCP in, SEG out by C-STORE SCU; off unless DIMSE_PORT is set.
  ...DimseEnvSchema.shape,
});

const variableOf = (field: PropertyKey): string =>
  (Object.entries(ENGINE_VARIABLES).find(([, [key]]) => key === field)?.[0] as string | undefined) ?? String(field);

/** The environment -> the service's settings plus the engine's config (flat, under the engine's field names). */
const ServiceConfigSchema = EnvSchema.transform((e, ctx) => {
  const engineInput = Object.fromEntries(Object.entries(ENGINE_VARIABLES).map(([name, [key]]) => [key, e[name as EngineVariable]]));
  const engine = EngineConfigSchema.safeParse(engineInput);
  if (!engine.success) {
    for (const issue of engine.error.issues) ctx.addIssue({ code: 'custom', path: [variableOf(issue.path[0] ?? '')], message: issue.message });
    return z.NEVER;
  }
  // --- DIMSE: its own variables plus what it shares (listen host, the series limits of DICOMWEB_MAX_*).
  const dimse = dimseSettings(e, { host: e.HOST, maxInstances: e.DICOMWEB_MAX_INSTANCES, maxFrames: e.DICOMWEB_MAX_FRAMES }, ctx);
  if (!dimse) return z.NEVER;
  return {
    port: e.PORT,
    host: e.HOST,
    ...engine.data,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    bodyTimeoutMs: e.BODY_TIMEOUT_MS,
    bodyIdleTimeoutMs: e.BODY_IDLE_TIMEOUT_MS,
    headersTimeoutMs: e.HEADERS_TIMEOUT_MS,
    connectionTimeoutMs: e.CONNECTION_TIMEOUT_MS ?? engine.data.requestTimeoutMs + 30_000,
    maxInflightBodyBytes: e.MAX_INFLIGHT_BODY_BYTES ?? 4 * e.BODY_LIMIT_BYTES,
    resultTtlSeconds: e.RESULT_TTL_SECONDS,
    resultCacheMax: e.RESULT_CACHE_MAX,
    previewMaxSide: e.PREVIEW_MAX_SIDE,
    redisUrl: e.REDIS_URL,
    apiToken: e.API_TOKEN,
    docsPublic: e.DOCS_PUBLIC,
    rateLimitRpm: e.RATE_LIMIT_RPM,
    corsOrigins: e.CORS_ORIGINS,
    drainTimeoutSeconds: e.DRAIN_TIMEOUT_SECONDS,
    shutdownDelaySeconds: e.SHUTDOWN_DELAY_SECONDS,
    logLevel: e.LOG_LEVEL,
    dicomweb: dicomwebSettings(e),
    dimse,
  };
});
export type ServiceConfig = z.infer<typeof ServiceConfigSchema>;

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Validates `env` (default process.env); throws ConfigError whose message is one line naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): ServiceConfig {
  const picked: Record<string, string | undefined> = {};
  // An empty variable (`FOO=`) counts as unset, the usual shell/compose convention.
  for (const key of CONFIG_VARIABLES) picked[key] = env[key] === '' ? undefined : env[key];
  const r = ServiceConfigSchema.safeParse(picked);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    const shown = env[variable] === undefined ? '' : ` (got ${JSON.stringify(variable === 'API_TOKEN' ? '<redacted>' : env[variable])})`;
    throw new ConfigError(variable, `invalid configuration: ${variable} ${issue.message}${shown}`);
  }
  return r.data;
}

/** The engine's part of the service configuration, as Engine.start takes it. */
export function engineConfig(c: ServiceConfig): EngineConfig {
  return EngineConfigSchema.parse(Object.fromEntries(Object.keys(EngineConfigSchema.shape).map((k) => [k, c[k as keyof EngineConfig]])));
}

/** The variables, for the README table, the deploy manifests' check and `--help`-style output. */
export const CONFIG_VARIABLES = Object.keys(EnvSchema.shape);
