import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { DEFAULT_MAX_PIXELS } from '../dicom/decode.ts';
import { EngineConfigSchema, MAX_PIXELS_DEFAULT } from './config.ts';
import { Engine } from './engine.ts';
import { InvalidRequestError } from './errors.ts';

test('the schema fills every default; 64 Mi pixels is the decoder\'s own default', () => {
  const c = EngineConfigSchema.parse({ modelRepository: 'm' });
  assert.deepEqual(c, {
    modelRepository: 'm',
    provider: 'cpu',
    deviceId: 0,
    workers: 0,
    intraOpThreads: 0,
    intraOpSpinning: false,
    maxBatch: 0,
    maxDelayMs: 5,
    maxQueue: 64,
    maxPixels: 64 * 1024 * 1024,
    taskTimeoutMs: 30_000,
    requestTimeoutMs: 120_000,
  });
  assert.equal(MAX_PIXELS_DEFAULT, DEFAULT_MAX_PIXELS);
  for (const [k, v] of Object.entries(EngineConfigSchema.shape)) assert.ok(v.description, `${k} has a description`);
});

test('Engine.start refuses an out-of-bounds config with InvalidRequestError naming the field, before starting workers', async () => {
  const logger = pino({ level: 'silent' });
  for (const [bad, field] of [
    [{ workers: -1 }, 'workers'],
    [{ prepareWorkers: 65 }, 'prepareWorkers'],
    [{ maxBatch: 1.5 }, 'maxBatch'],
    [{ provider: 'tpu' }, 'provider'],
    [{ maxDelayMs: -1 }, 'maxDelayMs'],
    [{ modelRepository: '' }, 'modelRepository'],
    [{ taskTimeoutMs: 0 }, 'taskTimeoutMs'],
    [{ requestTimeoutMs: 1.5 }, 'requestTimeoutMs'],
    [{ models: [] }, 'models'],
  ] as const) {
    await assert.rejects(Engine.start({ modelRepository: 'm', ...bad } as never, logger), (e: unknown) => {
      assert.ok(e instanceof InvalidRequestError, String(e));
      assert.equal(e.field, field);
      assert.match(e.message, new RegExp(`^engine config: ${field} `));
      return true;
    });
  }
});
