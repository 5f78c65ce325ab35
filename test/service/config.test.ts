/**
 * Configuration: `loadConfig` defaults and validation, and the real entry point refusing to start
 * on a bad variable with one stderr line naming it and a non-zero exit code.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../services/config.ts';
import { REPO_ROOT } from './helpers.ts';

function runMain(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/main.ts'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('configuration', () => {
  it('has documented defaults', () => {
    const c = loadConfig({});
    assert.equal(c.port, 8080);
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.modelRepository, 'models');
    assert.equal(c.provider, 'cpu');
    assert.equal(c.bodyLimitBytes, 64 * 1024 * 1024);
    assert.equal(c.redisUrl, undefined);
    assert.equal(c.apiToken, undefined);
    assert.equal(c.rateLimitRpm, undefined);
    assert.equal(c.logLevel, 'info');
  });

  it('parses every variable', () => {
    const c = loadConfig({
      PORT: '9000',
      HOST: '127.0.0.1',
      MODEL_REPOSITORY: '/m',
      DEFAULT_MODEL: 'lung',
      EXECUTION_PROVIDER: 'cuda',
      CUDA_DEVICE_ID: '1',
      WORKERS: '2',
      INTRA_OP_THREADS: '4',
      INTRA_OP_SPINNING: '1',
      MAX_BATCH: '16',
      MAX_BATCH_DELAY_MS: '10',
      MAX_QUEUE: '100',
      MAX_IMAGE_PIXELS: '1000000',
      BODY_LIMIT_BYTES: '2048',
      RESULT_TTL_SECONDS: '60',
      RESULT_CACHE_MAX: '5',
      REDIS_URL: 'redis://localhost:6379/0',
      API_TOKEN: 'sixteen-char-tok',
      RATE_LIMIT_RPM: '600',
      DRAIN_TIMEOUT_SECONDS: '5',
      LOG_LEVEL: 'debug',
    });
    assert.deepEqual(
      [c.port, c.host, c.modelRepository, c.defaultModel, c.provider, c.deviceId, c.workers, c.intraOpThreads, c.intraOpSpinning, c.maxBatch, c.maxDelayMs, c.maxQueue],
      [9000, '127.0.0.1', '/m', 'lung', 'cuda', 1, 2, 4, true, 16, 10, 100],
    );
    assert.deepEqual(
      [c.maxPixels, c.bodyLimitBytes, c.resultTtlSeconds, c.resultCacheMax, c.redisUrl, c.apiToken, c.rateLimitRpm, c.drainTimeoutSeconds, c.logLevel],
      [1000000, 2048, 60, 5, 'redis://localhost:6379/0', 'sixteen-char-tok', 600, 5, 'debug'],
    );
  });

  it('treats an empty variable as unset', () => {
    assert.equal(loadConfig({ PORT: '', REDIS_URL: '' }).port, 8080);
    assert.equal(loadConfig({}).intraOpSpinning, false, 'ORT intra-op threads sleep unless asked to spin');
  });

  for (const [name, value] of [
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['EXECUTION_PROVIDER', 'tpu'],
    ['INTRA_OP_SPINNING', 'yes'],
    ['WORKERS', '65'],
    ['MAX_BATCH', '1.5'],
    ['BODY_LIMIT_BYTES', '-1'],
    ['REDIS_URL', 'http://localhost'],
    ['API_TOKEN', 'short'],
    ['LOG_LEVEL', 'loud'],
    ['RATE_LIMIT_RPM', '0'],
  ] as const) {
    it(`rejects ${name}=${value} naming the variable`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (e: unknown) => e instanceof ConfigError && e.variable === name && e.message.startsWith(`invalid configuration: ${name} `) && !e.message.includes('\n'),
      );
    });
  }

  it('does not echo the API token in the error', () => {
    assert.throws(() => loadConfig({ API_TOKEN: 'abc' }), (e: Error) => !e.message.includes('abc'));
  });

  it('npm start exits non-zero with one line naming the bad variable', async () => {
    for (const [name, value] of [
      ['PORT', 'eighty'],
      ['EXECUTION_PROVIDER', 'tpu'],
      ['MAX_QUEUE', 'lots'],
    ]) {
      const r = await runMain({ [name!]: value! });
      assert.notEqual(r.code, 0);
      assert.notEqual(r.code, null);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, new RegExp(`^invalid configuration: ${name} `));
      assert.equal(r.stdout, '');
    }
  });

  it('npm start exits non-zero when the model repository cannot be served', async () => {
    const r = await runMain({ PORT: '0', HOST: '127.0.0.1', MODEL_REPOSITORY: '/nonexistent/models', LOG_LEVEL: 'info' });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /engine failed to start/);
  });
});
