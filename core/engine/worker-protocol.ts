/** Messages between the engine (main thread) and inference-worker.ts, and what each returns. */
import type { ModelManifest } from '../manifest.ts';
import { createMask } from '../mask.ts';
import { knownRunsOf, maskFromRuns } from '../rle/runs.ts';
import type { PreprocessSpec } from '../preprocess/spec.ts';
import type { MaskRules } from '../segmentation/postprocessing.ts';
import type { ImageFacts, Preview, SegmentedMask } from '../segmentation/records.ts';
import type { Provider, SessionConfig } from '../runtime/session.ts';

export interface InferenceWorkerData {
  session: SessionConfig;
}

export interface LoadMsg {
  type: 'load';
  key: string;
  /** The model's verified bytes (read and hashed once on the main thread), never a path to re-read. */
  onnx: Uint8Array;
  /** Their sha256: the worker hashes what it got again before opening it. */
  sha256: string;
  manifest: ModelManifest;
  /** Batch sizes to run once each before the model counts as loaded (e.g. 1 and maxBatch). */
  warmupBatches: number[];
}
export interface LoadResult {
  key: string;
  /** sha256 of the bytes the session was opened from. */
  sha256: string;
  provider: Provider;
  fallbackReason?: string;
  loadMs: number;
  warmupMs: number;
}

export interface UnloadMsg {
  type: 'unload';
  key: string;
}

export interface PrepareMsg {
  type: 'prepare';
  dicom: Uint8Array;
  frame?: number;
  maxPixels: number;
  spec: PreprocessSpec;
  /** Also return the horizontally flipped tensor (TTA). */
  tta: boolean;
  /** Also return an 8-bit preview of the decoded image, longer side at most maxSide. */
  preview?: { maxSide: number };
}

export interface PrepareResult {
  image: ImageFacts;
  /** C x H x W model input; with TTA, [original, flipped]. Transferred. */
  tensors: Float32Array[];
  /** When asked for (transferred). */
  preview?: Preview;
  decodeMs: number;
  preprocessMs: number;
}

export interface InferEntry {
  /** 1 image, or 2 (original, flipped) for TTA: always in the same batch. */
  tensors: Float32Array[];
  rows: number;
  cols: number;
  /** The request's own rules; the model's processor fills in the manifest's. */
  rules: Partial<MaskRules>;
  /**
   * What to return (default: masks only). `probabilities`: the model output after the manifest's
   * activation (TTA-averaged with the un-flipped twin), C x H x W at the model's output size.
   */
  outputs?: { masks: boolean; probabilities: boolean };
}

/** What an entry asks for: its `outputs`, or the default, masks only. */
export function wantsOf(e: InferEntry): { masks: boolean; probabilities: boolean } {
  return e.outputs ?? { masks: true, probabilities: false };
}

export interface InferMsg {
  type: 'infer';
  key: string;
  entries: InferEntry[];
  /**
   * Return each entry's network output(s) (`raw`) instead of post-processing them here: the engine then
   * post-processes in a prepare worker, so this worker's lane holds session.run alone (with the GPU's
   * fast runs, post-processing a batch of 1024² masks in this lane cost 6x the run: bench/gpu/results).
   */
  raw?: boolean;
}

export interface InferResult {
  /** Epoch ms (performance.timeOrigin + now) when the worker started this batch. */
  startedAt: number;
  /** session.run time for the whole batch (all chunks). */
  runMs: number;
  images: number;
  provider: Provider;
  /**
   * Per entry, the records as the processor made them (mask buffers transferred; none when the entry
   * asked for no masks), and its probabilities when asked for (transferred).
   */
  entries: Array<Postprocessed & { raw?: Float32Array[] }>;
}

/** One entry post-processed: its masks (none when it asked for none) and, when asked for, probabilities. */
export interface Postprocessed {
  masks: WireMask[];
  postprocessMs: number;
  probabilities?: Float32Array;
}

/**
 * A SegmentedMask as it crosses from a worker: its facts, and its pixels either as the column-major
 * foreground runs it was made from (the threshold pass to a larger image makes them, see
 * probabilitiesToMask) or as its rows x cols bytes (every other path). At 1024² the runs are a few
 * KiB against 1 MiB of bytes; the main thread encodes RLE from them without a scan, and paints the
 * pixels only for a consumer that reads `mask.data` (Dice, a SEG). A mask that has no runs crosses as
 * bytes: finding its runs here would move a scan onto the inference lanes (measured: a loss).
 */
export type WireMask = Omit<SegmentedMask, 'mask'> & { rows: number; cols: number } & ({ starts: Float64Array; lengths: Float64Array } | { data: Uint8Array });

/** A worker's masks for the wire, with the buffers to transfer. */
export function masksToWire(masks: SegmentedMask[]): { masks: WireMask[]; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const wire = masks.map(({ mask, ...facts }): WireMask => {
    const runs = knownRunsOf(mask);
    if (!runs) {
      transfer.push(mask.data.buffer as ArrayBuffer);
      return { ...facts, rows: mask.rows, cols: mask.cols, data: mask.data };
    }
    // Own buffers of exactly `count` entries, to transfer.
    const starts = runs.starts.slice(0, runs.count);
    const lengths = runs.lengths.slice(0, runs.count);
    transfer.push(starts.buffer, lengths.buffer);
    return { ...facts, rows: mask.rows, cols: mask.cols, starts, lengths };
  });
  return { masks: wire, transfer };
}

/** The masks as the engine hands them on. */
export function masksFromWire(masks: WireMask[]): SegmentedMask[] {
  return masks.map((w) => {
    if ('data' in w) {
      const { rows, cols, data, ...facts } = w;
      return { ...facts, mask: createMask(rows, cols, data) };
    }
    const { rows, cols, starts, lengths, ...facts } = w;
    return { ...facts, mask: maskFromRuns({ starts, lengths, count: starts.length }, rows, cols) };
  });
}

/**
 * Post-process one entry's network output(s) in a prepare worker (InferMsg.raw): the processor is built
 * from `manifest` once per `key` and `sha256` (the model's bytes) and kept.
 */
export interface PostprocessMsg {
  type: 'postprocess';
  key: string;
  sha256: string;
  manifest: ModelManifest;
  /** The entry's output, and with TTA the flipped input's (transferred). */
  outputs: Float32Array[];
  rows: number;
  cols: number;
  rules: Partial<MaskRules>;
  wants: { masks: boolean; probabilities: boolean };
}

/** Release every session before the pool terminates this thread. */
export interface ShutdownMsg {
  type: 'shutdown';
}

export type WorkerMsg = LoadMsg | UnloadMsg | PrepareMsg | InferMsg | PostprocessMsg | ShutdownMsg;

/** Milliseconds since the epoch, comparable across threads (performance.now() is per thread). */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}
