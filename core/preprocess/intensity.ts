import type { DecodedImage } from '../dicom/types.ts';
import type { Intensity } from './spec.ts';

/**
 * Step 1 of preprocessing: modality values -> [0, 1], clamped. Returns a new array the size of
 * the image; computed in float64 per pixel, stored as float32.
 */
export function applyIntensity(image: DecodedImage, intensity: Intensity): Float32Array {
  switch (intensity.kind) {
    case 'minmax':
      return minmax(image);
    case 'zscore':
      return zscore(image.pixels, intensity.clip);
    case 'window':
      return linearWindow(image.pixels, intensity.center, intensity.width);
    case 'dicom-window': {
      const w = image.window;
      if (w && Number.isFinite(w.center) && Number.isFinite(w.width) && w.width > 0) return linearWindow(image.pixels, w.center, w.width);
      return intensity.fallback === 'zscore' ? zscore(image.pixels, 3) : minmax(image);
    }
    case 'range':
      return affineClamped(image.pixels, intensity.low, intensity.high - intensity.low);
  }
}

/** (x - low) / span, clamped to [0, 1]. */
function affineClamped(px: Float32Array, low: number, span: number): Float32Array {
  const out = new Float32Array(px.length);
  const inv = 1 / span;
  for (let i = 0; i < px.length; i++) {
    const v = (px[i] - low) * inv;
    out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return out;
}

/** Per-image min..max; a constant image maps to 0. Uses the decoder's precomputed range. */
function minmax(image: DecodedImage): Float32Array {
  let { min, max } = image;
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    min = Infinity;
    max = -Infinity;
    for (const v of image.pixels) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (!(max > min)) return new Float32Array(image.pixels.length);
  return affineClamped(image.pixels, min, max - min);
}

/** Per-image z-score (population std), clamped to +-clip std, then mapped linearly to [0, 1]. */
function zscore(px: Float32Array, clip: number): Float32Array {
  const n = px.length;
  if (n === 0) return new Float32Array(0);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += px[i];
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const d = px[i] - mean;
    ss += d * d;
  }
  const std = Math.sqrt(ss / n);
  // A constant image has z = 0 everywhere: mid-grey.
  if (!(std > 0)) return new Float32Array(n).fill(0.5);
  return affineClamped(px, mean - clip * std, 2 * clip * std);
}

/**
 * DICOM linear VOI window in its exact form (PS3.3 C.11.2.1.3.2, LINEAR_EXACT): values at or
 * below c - w/2 -> 0, at or above c + w/2 -> 1, linear in between. Unlike the LINEAR form it
 * needs no w >= 1, so it also serves float data.
 */
function linearWindow(px: Float32Array, center: number, width: number): Float32Array {
  return affineClamped(px, center - width / 2, width);
}
