import type { DecodedImage } from '../dicom/types.ts';
import { PreprocessError } from './errors.ts';
import { intensityTransform } from './intensity.ts';
import { resampleFloat32, type PixelSource } from './resample.ts';
import type { PreprocessSpec } from './spec.ts';
import { parsePreprocessSpec } from './validate.ts';

/** The image's values as the resampler reads them: its raw samples through their table when it has them (no float copy). */
function checkedSource(image: DecodedImage): PixelSource {
  const { rows, columns } = image;
  if (!Number.isInteger(rows) || !Number.isInteger(columns) || rows <= 0 || columns <= 0) {
    throw new PreprocessError('INVALID_IMAGE', `image size must be positive integers, got ${rows}x${columns}`);
  }
  const source: PixelSource = image.samples ?? image.pixels;
  const n = source instanceof Float32Array ? source.length : source?.data?.length;
  if (!(source instanceof Float32Array || source?.lut instanceof Float32Array) || n !== rows * columns) {
    throw new PreprocessError('INVALID_IMAGE', `image has ${n} pixel values, expected ${rows}x${columns}=${rows * columns}`);
  }
  return source;
}

/**
 * The one preprocessing path shared by trainer and service: a decoded frame -> C*H*W float32
 * (the caller stacks a batch). Order, fixed by the spec:
 *   1. intensity -> [0, 1] clamped;
 *   2. resize to size.height x size.width (pixel-centre aligned, antialiased when shrinking;
 *      clamped to [0, 1] again since bicubic/lanczos3 overshoot);
 *   3. optional (x - mean[c]) / std[c];
 *   4. replicate to `channels`.
 * Deterministic: the same image and spec give bit-identical output.
 */
export async function toTensor(image: DecodedImage, spec: PreprocessSpec): Promise<Float32Array> {
  return toTensorSync(image, spec);
}

/** Synchronous form of toTensor (pure JS, no native work), for loops that batch many images. */
export function toTensorSync(image: DecodedImage, specInput: PreprocessSpec): Float32Array {
  return tensorFromImage(image, parsePreprocessSpec(specInput));
}

/** toTensorSync for a spec that has already been through parsePreprocessSpec (the processor parses once). */
export function tensorFromImage(image: DecodedImage, spec: PreprocessSpec): Float32Array {
  const source = checkedSource(image);
  const { height: H, width: W } = spec.size;
  // Step 1 is fused into the first resampling pass (same arithmetic, no full-size intermediate).
  const resized = resampleFloat32(source, image.rows, image.columns, H, W, spec.resize, intensityTransform(image, spec.intensity));
  if (spec.resize === 'bicubic' || spec.resize === 'lanczos3') {
    for (let i = 0; i < resized.length; i++) {
      const v = resized[i];
      if (v < 0) resized[i] = 0;
      else if (v > 1) resized[i] = 1;
    }
  }
  const C = spec.channels;
  const plane = H * W;
  const out = new Float32Array(C * plane);
  for (let c = 0; c < C; c++) out.set(resized, c * plane);
  if (spec.normalize) normalizeInPlace(out, C, spec.normalize);
  return out;
}

/**
 * Step 3, in place on a C x H x W tensor: (x - mean[c]) * (1 / std[c]), one mean/std for every
 * channel when the spec gives one. The only normalisation: the trainer's loader applies it to
 * augmented cached tensors with this same function, so training and serving inputs are bit-identical.
 */
export function normalizeInPlace(x: Float32Array, channels: number, normalize: NonNullable<PreprocessSpec['normalize']>): Float32Array {
  const plane = x.length / channels;
  for (let c = 0; c < channels; c++) {
    const k = normalize.mean.length === 1 ? 0 : c;
    const mean = normalize.mean[k]!;
    const inv = 1 / normalize.std[k]!;
    const o = c * plane;
    for (let i = 0; i < plane; i++) x[o + i] = (x[o + i]! - mean) * inv;
  }
  return x;
}
