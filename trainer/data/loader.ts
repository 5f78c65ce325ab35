/**
 * Streams batches from the tensor cache: only indices are shuffled, records are read per batch
 * (a few hundred KB each) with `prefetch` batches read and augmented ahead while the current step
 * runs, so memory holds O(batch * prefetch) samples whatever the dataset size.
 *
 * The epoch's order and each sample's augmentation come from streams derived from
 * (seed, epoch, position), so a resumed run sees exactly the batches an uninterrupted run would.
 */
import { normalizeInPlace } from '../../core/preprocess/tensor.ts';
import { applyAugment, sampleAugmentParams, type AugmentConfig } from '../augment.ts';
import { Stream, shuffled, streamRng } from '../rng.ts';
import type { CachedSample, PreparedSample, TensorCache } from './cache.ts';

export interface Normalisation {
  mean: number[];
  std: number[];
}

export interface Batch {
  /** N*C*H*W float32, normalised when the loader has a normalisation. */
  images: Float32Array;
  /** N*classes*H*W float32 in {0, 1} (multi-class: the one-hot encoding of `labels`). */
  masks: Float32Array;
  /** Multi-class records: N*H*W class indices (after augmentation). */
  labels?: Uint8Array;
  n: number;
  samples: PreparedSample[];
  /** Only when the loader was asked for original masks (validation). */
  cached?: CachedSample[];
}

export interface LoaderOptions {
  batchSize: number;
  /** Shuffle each epoch (training) or keep order (validation). */
  shuffle: boolean;
  seed: number;
  augment?: AugmentConfig;
  normalize?: Normalisation;
  prefetch?: number;
  /** Drop a final batch smaller than this (BatchNorm statistics of 1 image are degenerate). */
  minBatch?: number;
  originalMasks?: boolean;
}

export class BatchLoader {
  constructor(
    private readonly cache: TensorCache,
    readonly samples: readonly PreparedSample[],
    private readonly o: LoaderOptions,
  ) {
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new RangeError(`batch size must be a positive integer, got ${o.batchSize}`);
  }

  /** Order of sample indices for an epoch. */
  order(epoch: number): number[] {
    const idx = Array.from({ length: this.samples.length }, (_, i) => i);
    return this.o.shuffle ? shuffled(idx, streamRng(this.o.seed, Stream.shuffle, epoch)) : idx;
  }

  batchesPerEpoch(): number {
    const full = Math.floor(this.samples.length / this.o.batchSize);
    const rest = this.samples.length % this.o.batchSize;
    return full + (rest > 0 && rest >= (this.o.minBatch ?? 1) ? 1 : 0);
  }

  private async load(order: number[], epoch: number, start: number): Promise<Batch> {
    const end = Math.min(start + this.o.batchSize, order.length);
    const picked = order.slice(start, end).map((i) => this.samples[i]!);
    const cached = await Promise.all(picked.map((s) => this.cache.read(s, { originalMask: this.o.originalMasks })));
    const first = cached[0]!.meta;
    const { channels, classes, height, width } = first;
    const imgLen = channels * height * width;
    const maskLen = classes * height * width;
    const plane = height * width;
    const labelTargets = first.target === 'labels';
    const images = new Float32Array(picked.length * imgLen);
    const masks = new Float32Array(picked.length * maskLen);
    const labels = labelTargets ? new Uint8Array(picked.length * plane) : undefined;
    cached.forEach((c, k) => {
      if (c.meta.height !== height || c.meta.width !== width || c.meta.channels !== channels || c.meta.classes !== classes || c.meta.target !== first.target) {
        throw new Error('cache records of different sizes or classes in one batch');
      }
      let img = c.image;
      let msk = c.mask;
      if (this.o.augment) {
        const rng = streamRng(this.o.seed, Stream.augment, epoch, start + k);
        const p = sampleAugmentParams(this.o.augment, rng, height, width);
        // A class-index map is one plane that nearest sampling moves exactly like a 0/1 mask.
        ({ image: img, mask: msk } = applyAugment({ image: img, mask: msk, channels, classes: labelTargets ? 1 : classes, height, width }, p, this.o.augment.border));
      }
      const view = images.subarray(k * imgLen, (k + 1) * imgLen);
      view.set(img);
      // Step 3 of preprocessing, by core's own function: cached tensors are stored before it.
      if (this.o.normalize) normalizeInPlace(view, channels, this.o.normalize);
      if (labels) {
        labels.set(msk, k * plane);
        for (let i = 0; i < plane; i++) masks[k * maskLen + msk[i]! * plane + i] = 1;
      } else {
        for (let i = 0; i < maskLen; i++) masks[k * maskLen + i] = msk[i]! ? 1 : 0;
      }
    });
    const batch: Batch = { images, masks, n: picked.length, samples: picked };
    if (labels) batch.labels = labels;
    if (this.o.originalMasks) batch.cached = cached;
    return batch;
  }

  /** Batches of one epoch, reading `prefetch` batches ahead. */
  async *epoch(epoch: number): AsyncGenerator<Batch> {
    const order = this.order(epoch);
    const starts: number[] = [];
    const nb = this.batchesPerEpoch();
    for (let b = 0; b < nb; b++) starts.push(b * this.o.batchSize);
    const ahead = Math.max(1, this.o.prefetch ?? 2);
    const queue: Promise<Batch>[] = [];
    let next = 0;
    const fill = (): void => {
      while (queue.length < ahead && next < starts.length) {
        const p = this.load(order, epoch, starts[next++]!);
        p.catch(() => undefined); // surfaced when awaited; avoids an unhandled rejection while queued
        queue.push(p);
      }
    };
    fill();
    while (queue.length > 0) {
      const b = await queue.shift()!;
      fill();
      yield b;
    }
  }
}

/** Per-channel mean and std of cached (unnormalised) tensors, streamed one record at a time. */
export async function datasetStatistics(cache: TensorCache, samples: readonly PreparedSample[]): Promise<Normalisation> {
  if (samples.length === 0) throw new RangeError('no samples to compute statistics on');
  const channels = samples[0]!.meta.channels;
  const sum = new Float64Array(channels);
  const sq = new Float64Array(channels);
  let count = 0;
  for (const s of samples) {
    const c = await cache.read(s);
    const plane = c.image.length / channels;
    for (let ch = 0; ch < channels; ch++) {
      for (let i = 0; i < plane; i++) {
        const v = c.image[ch * plane + i]!;
        sum[ch] += v;
        sq[ch] += v * v;
      }
    }
    count += plane;
  }
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sq, (s, ch) => Math.max(Math.sqrt(Math.max(s / count - mean[ch]! ** 2, 0)), 1e-6));
  return { mean, std };
}
