/** Shared setup for the engine's own tests: a temp model repository, a captured logger, an engine. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { makeModelRepository, type FixtureModel } from '../../../test/helpers/model-fixture.ts';
import type { EngineConfigInput } from '../config.ts';
import { Engine, type EngineObserver } from '../engine.ts';

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export function captureLogger(level: pino.Level = 'info'): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines };
}

export const baseConfig = (modelRepository: string): EngineConfigInput => ({
  modelRepository,
  provider: 'cpu',
  deviceId: 0,
  workers: 2,
  intraOpThreads: 1,
  maxBatch: 4,
  maxDelayMs: 5,
  maxQueue: 64,
  maxPixels: 16 * 1024 * 1024,
});

export interface EngineFixture {
  dir: string;
  engine: Engine;
  lines: LogLine[];
  batches: number[];
  depths: number[];
  cleanup(): Promise<void>;
}

export async function startEngine(models: FixtureModel[], cfg: Partial<EngineConfigInput> = {}, observer: EngineObserver = {}): Promise<EngineFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'engine-'));
  await makeModelRepository(dir, models);
  const { logger, lines } = captureLogger();
  const batches: number[] = [];
  const depths: number[] = [];
  const engine = await Engine.start({ ...baseConfig(dir), ...cfg }, logger, {
    ...observer,
    batch: (m, n) => {
      batches.push(n);
      observer.batch?.(m, n);
    },
    queueDepth: (d) => {
      depths.push(d);
      observer.queueDepth?.(d);
    },
  });
  return {
    dir,
    engine,
    lines,
    batches,
    depths,
    cleanup: async () => {
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
