/**
 * Run checkpoints: the engine's checkpoint (weights, BN statistics, Adam moments, step) plus the
 * shell's state (epochs done, history, best so far, normalisation, the options that must match to
 * resume). Randomness needs no saved generator state: every draw is derived from
 * (seed, epoch, position), so "epochs done" restores it exactly.
 *
 * File: 'UTS1' | u32 JSON length | JSON state | engine checkpoint bytes (serializeCheckpoint).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { deserializeCheckpoint, serializeCheckpoint } from './session/training-session.ts';
import type { Checkpoint } from './session/types.ts';
import type { EpochMetrics } from './run/types.ts';
import type { Normalisation } from './data/loader.ts';

const MAGIC = 'UTS1';

export interface RunState {
  format: 'unet-train-state-v1';
  /** Epochs completed (the next epoch index, 0-based). */
  epochsDone: number;
  globalStep: number;
  history: EpochMetrics[];
  bestEpoch: number;
  bestDice: number;
  normalisation: Normalisation | null;
  fingerprint: Record<string, unknown>;
  /** Training-time seconds so far, so a resumed run reports the whole duration. */
  seconds: number;
  savedAt: string;
}

export class ResumeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResumeError';
  }
}

export async function saveRunCheckpoint(path: string, state: RunState, ckpt: Checkpoint): Promise<void> {
  const json = Buffer.from(JSON.stringify(state));
  const head = Buffer.alloc(8);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length, 4);
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, Buffer.concat([head, json, serializeCheckpoint(ckpt)]));
  await rename(tmp, path);
}

export async function loadRunCheckpoint(path: string): Promise<{ state: RunState; checkpoint: Checkpoint }> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new ResumeError(`cannot read checkpoint ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (buf.length < 8 || buf.toString('latin1', 0, 4) !== MAGIC) throw new ResumeError(`${path} is not a training checkpoint (written by npm run train)`);
  const len = buf.readUInt32LE(4);
  if (buf.length < 8 + len) throw new ResumeError(`checkpoint ${path} is truncated`);
  let state: RunState;
  try {
    state = JSON.parse(buf.toString('utf8', 8, 8 + len)) as RunState;
  } catch {
    throw new ResumeError(`checkpoint ${path} has an unreadable header`);
  }
  if (state.format !== 'unet-train-state-v1') throw new ResumeError(`checkpoint ${path} has unknown format ${String(state.format)}`);
  state.history = state.history.map(fromNamedFields);
  let checkpoint: Checkpoint;
  try {
    checkpoint = deserializeCheckpoint(new Uint8Array(buf.buffer, buf.byteOffset + 8 + len, buf.length - 8 - len));
  } catch (e) {
    throw new ResumeError(`checkpoint ${path}: ${(e as Error).message}`);
  }
  return { state, checkpoint };
}

/** First option that differs between a checkpoint and this run, as a readable message. */
export function fingerprintMismatch(saved: Record<string, unknown>, now: Record<string, unknown>): string | undefined {
  for (const k of new Set([...Object.keys(saved), ...Object.keys(now)])) {
    const a = JSON.stringify(saved[k] ?? null);
    const b = JSON.stringify(now[k] ?? null);
    if (a !== b) return `${k} was ${a} in the checkpoint but is ${b} now`;
  }
  return undefined;
}

/**
 * Checkpoints written before loss terms were named kept each term in its own field; their history
 * is read into `trainLosses` so such a run can still be resumed.
 */
function fromNamedFields(h: EpochMetrics): EpochMetrics {
  const old = h as EpochMetrics & { trainBce?: number; trainDiceLoss?: number; trainFocal?: number };
  if (old.trainLosses || old.trainBce === undefined) return h;
  const { trainBce, trainDiceLoss, trainFocal, ...rest } = old;
  return { ...rest, trainLosses: { bce: trainBce, dice: trainDiceLoss!, focal: trainFocal! } };
}
