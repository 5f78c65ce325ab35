import type { DecodedImage } from '../dicom/types.ts';
import type { AffineClamp } from './resample.ts';
import type { Intensity } from './spec.ts';

/**
 * Step 1 of preprocessing: modality values -> [0, 1], clamped. Every kind is an affine map
 * followed by a clamp, v = clamp(x * scale + offset, 0, 1); only the per-image statistics differ.
 * Returning the map (not the mapped image) lets the resize apply it row by row.
 */
export function intensityTransform(image: DecodedImage, intensity: Intensity): AffineClamp {
  switch (intensity.kind) {
    case 'minmax':
      return minmax(image);
    case 'zscore':
      return zscore(image.pixels, intensity.clip);
    case 'window':
      return linearWindow(intensity.center, intensity.width);
    case 'dicom-window': {
      const w = image.window;
      if (w && Number.isFinite(w.center) && Number.isFinite(w.width) && w.width > 0) return linearWindow(w.center, w.width);
      return intensity.fallback === 'zscore' ? zscore(image.pixels, 3) : minmax(image);
    }
    case 'range':
      return lowSpan(intensity.low, intensity.high - intensity.low);
  }
}

/** The intensity step alone, at the image's own size. */
export function applyIntensity(image: DecodedImage, intensity: Intensity): Float32Array {
  const { scale, offset } = intensityTransform(image, intensity);
  const px = image.pixels;
  const out = new Float32Array(px.length);
  for (let i = 0; i < px.length; i++) {
    const v = px[i] * scale + offset;
    out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return out;
}

/** (x - low) / span. */
function lowSpan(low: number, span: number): AffineClamp {
  return { scale: 1 / span, offset: -low / span };
}

/** Per-image min..max; a constant image maps to 0. Uses the decoder's precomputed range. */
function minmax(image: DecodedImage): AffineClamp {
  let { min, max } = image;
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    min = Infinity;
    max = -Infinity;
    for (const v of image.pixels) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (!(max > min)) return { scale: 0, offset: 0 };
  return lowSpan(min, max - min);
}

/** Per-image z-score (population std), clamped to +-clip std, then mapped linearly to [0, 1]. */
function zscore(px: Float32Array, clip: number): AffineClamp {
  const n = px.length;
  if (n === 0) return { scale: 0, offset: 0.5 };
  // One pass over shifted data (shift = first pixel) keeps float64 sums free of cancellation.
  const k = px[0];
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < n; i++) {
    const d = px[i] - k;
    sum += d;
    sumSq += d * d;
  }
  const meanShifted = sum / n;
  const variance = Math.max(0, sumSq / n - meanShifted * meanShifted);
  const std = Math.sqrt(variance);
  // A constant image has z = 0 everywhere: mid-grey.
  if (!(std > 0)) return { scale: 0, offset: 0.5 };
  const mean = k + meanShifted;
  return lowSpan(mean - clip * std, 2 * clip * std);
}

/**
 * DICOM linear VOI window in its exact form (PS3.3 C.11.2.1.3.2, LINEAR_EXACT): values at or
 * below c - w/2 -> 0, at or above c + w/2 -> 1, linear in between. Unlike the LINEAR form it
 * needs no w >= 1, so it also serves float data.
 */
function linearWindow(center: number, width: number): AffineClamp {
  return lowSpan(center - width / 2, width);
}
