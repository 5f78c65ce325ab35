import { z } from 'zod';

/**
 * Service configuration, read once from the environment at start-up. Every variable is validated
 * here so a typo stops the process with one line naming the variable instead of surfacing later as
 * a confusing runtime failure.
 */

const MiB = 1024 * 1024;

/** Integer from an env string. */
const int = (min: number, max: number = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be >= ${min}`).max(max, `must be <= ${max}`));

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const EnvSchema = z.object({
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  MODEL_REPOSITORY: z.string().min(1).default('models'),
  /** Model used when a request names none; default the only model, or the first ready one by name. */
  DEFAULT_MODEL: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a model name').optional(),
  EXECUTION_PROVIDER: z.enum(['cpu', 'cuda']).default('cpu'),
  CUDA_DEVICE_ID: int(0, 64).default(0),
  /** Inference worker threads (each holds its own ORT sessions). */
  WORKERS: int(1, 64).default(1),
  /** ORT intra-op threads per session; 0 = the engine shares the cores evenly across workers. */
  INTRA_OP_THREADS: int(0, 256).default(0),
  /** 1: ORT intra-op threads busy-wait between parallel sections (ORT's own default); 0: they sleep. */
  INTRA_OP_SPINNING: z.enum(['0', '1']).default('0'),
  MAX_BATCH: int(1, 256).default(8),
  MAX_BATCH_DELAY_MS: int(0, 10_000).default(5),
  /** Requests waiting for a worker beyond this are refused with 503 + Retry-After. */
  MAX_QUEUE: int(1, 1_000_000).default(64),
  /** Decoded image size limit (rows x columns x frames x samples): larger images get 413. */
  MAX_IMAGE_PIXELS: int(1).default(64 * MiB),
  BODY_LIMIT_BYTES: int(1024).default(64 * MiB),
  RESULT_TTL_SECONDS: int(1).default(3600),
  RESULT_CACHE_MAX: int(1).default(1000),
  /** Longer side of the stored 8-bit preview behind overlay.png (made by the engine worker from its decode); 0 = keep no preview. */
  PREVIEW_MAX_SIDE: int(0, 1024).default(256),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\/.+/, 'must be a redis:// or rediss:// URL')
    .optional(),
  API_TOKEN: z.string().min(8, 'must be at least 8 characters').optional(),
  RATE_LIMIT_RPM: int(1).optional(),
  DRAIN_TIMEOUT_SECONDS: int(1, 3600).default(30),
  /** After SIGTERM, keep listening (readiness already false) this long before closing, for endpoint removal to propagate. */
  SHUTDOWN_DELAY_SECONDS: int(0, 600).default(0),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
});

export interface ServiceConfig {
  port: number;
  host: string;
  modelRepository: string;
  defaultModel: string | undefined;
  executionProvider: 'cpu' | 'cuda';
  cudaDeviceId: number;
  workers: number;
  intraOpThreads: number;
  intraOpSpinning: boolean;
  maxBatch: number;
  maxBatchDelayMs: number;
  maxQueue: number;
  maxImagePixels: number;
  bodyLimitBytes: number;
  resultTtlSeconds: number;
  resultCacheMax: number;
  previewMaxSide: number;
  redisUrl: string | undefined;
  apiToken: string | undefined;
  rateLimitRpm: number | undefined;
  drainTimeoutSeconds: number;
  shutdownDelaySeconds: number;
  logLevel: (typeof LOG_LEVELS)[number];
}

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
  for (const key of Object.keys(EnvSchema.shape)) picked[key] = env[key] === '' ? undefined : env[key];
  const r = EnvSchema.safeParse(picked);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    const shown = env[variable] === undefined ? '' : ` (got ${JSON.stringify(variable === 'API_TOKEN' ? '<redacted>' : env[variable])})`;
    throw new ConfigError(variable, `invalid configuration: ${variable} ${issue.message}${shown}`);
  }
  const e = r.data;
  return {
    port: e.PORT,
    host: e.HOST,
    modelRepository: e.MODEL_REPOSITORY,
    executionProvider: e.EXECUTION_PROVIDER,
    cudaDeviceId: e.CUDA_DEVICE_ID,
    workers: e.WORKERS,
    intraOpThreads: e.INTRA_OP_THREADS,
    intraOpSpinning: e.INTRA_OP_SPINNING === '1',
    defaultModel: e.DEFAULT_MODEL,
    maxBatch: e.MAX_BATCH,
    maxBatchDelayMs: e.MAX_BATCH_DELAY_MS,
    maxQueue: e.MAX_QUEUE,
    maxImagePixels: e.MAX_IMAGE_PIXELS,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    resultTtlSeconds: e.RESULT_TTL_SECONDS,
    resultCacheMax: e.RESULT_CACHE_MAX,
    previewMaxSide: e.PREVIEW_MAX_SIDE,
    redisUrl: e.REDIS_URL,
    apiToken: e.API_TOKEN,
    rateLimitRpm: e.RATE_LIMIT_RPM,
    drainTimeoutSeconds: e.DRAIN_TIMEOUT_SECONDS,
    shutdownDelaySeconds: e.SHUTDOWN_DELAY_SECONDS,
    logLevel: e.LOG_LEVEL,
  };
}

/** The variables and their defaults, for the README table and `--help`-style output. */
export const CONFIG_VARIABLES = Object.keys(EnvSchema.shape);
