/**
 * Training-time augmentation at model resolution, applied after the cache (so it never touches
 * DICOM) and before batching. One set of geometric parameters moves image and mask together:
 * image resampled bilinear, mask nearest (labels stay 0/1, no threshold to tune). Intensity changes
 * (brightness, contrast, gamma) touch the image only.
 *
 * Geometry is an inverse mapping: for each output pixel we compute where it came from, so every
 * output pixel is defined, and identity parameters reproduce the input exactly (integer source
 * coordinates make bilinear interpolation exact).
 */
import type { Rng } from './rng.ts';

export interface ElasticConfig {
  /** Probability of applying it to a sample. */
  p: number;
  /** Displacement standard deviation in pixels at the control points. */
  alpha: number;
  /** Control-point grid (grid x grid), displacements interpolated bilinearly between them. */
  grid: number;
}

export interface AugmentConfig {
  /** Probability of a horizontal flip. */
  hflip: number;
  /** Rotation drawn uniformly from +-rotate degrees. */
  rotate: number;
  /** Translation drawn uniformly from +-shift times the image size, per axis. */
  shift: number;
  /** Isotropic scale drawn uniformly from [1 - scale, 1 + scale]. */
  scale: number;
  /** Additive brightness drawn from +-brightness (intensity units, image in 0..1). */
  brightness: number;
  /** Multiplicative contrast about 0.5 drawn from [1 - contrast, 1 + contrast]. */
  contrast: number;
  /** Gamma drawn log-uniformly from [1/(1+gamma), 1+gamma]. */
  gamma: number;
  /** Off when undefined. */
  elastic?: ElasticConfig;
  /** What lies outside the source image: mirror (OpenCV REFLECT_101, albumentations' default) or zero. */
  border: 'reflect' | 'zero';
}

/** Seed 004's flip + rotate 10, plus mild shift/scale and intensity jitter. */
export const DEFAULT_AUGMENT: AugmentConfig = {
  hflip: 0.5,
  rotate: 10,
  shift: 0.0625,
  scale: 0.1,
  brightness: 0.1,
  contrast: 0.1,
  gamma: 0.2,
  border: 'reflect',
};

export const NO_AUGMENT: AugmentConfig = { hflip: 0, rotate: 0, shift: 0, scale: 0, brightness: 0, contrast: 0, gamma: 0, border: 'reflect' };

export interface AugmentParams {
  flip: boolean;
  angleDeg: number;
  /** Translation in pixels (output = transformed input moved by this). */
  shiftX: number;
  shiftY: number;
  scale: number;
  brightness: number;
  contrast: number;
  gamma: number;
  /** Per-output-pixel source displacement (dx, dy interleaved, h*w*2), when elastic applies. */
  displacement?: Float32Array;
}

export const IDENTITY_PARAMS: AugmentParams = { flip: false, angleDeg: 0, shiftX: 0, shiftY: 0, scale: 1, brightness: 0, contrast: 1, gamma: 1 };

export function sampleAugmentParams(cfg: AugmentConfig, rng: Rng, height: number, width: number): AugmentParams {
  // Always consume the same number of draws, so one parameter's setting never shifts another's.
  const flip = rng.next() < cfg.hflip;
  const angleDeg = rng.uniform(-cfg.rotate, cfg.rotate);
  const shiftX = rng.uniform(-cfg.shift, cfg.shift) * width;
  const shiftY = rng.uniform(-cfg.shift, cfg.shift) * height;
  const scale = 1 + rng.uniform(-cfg.scale, cfg.scale);
  const brightness = rng.uniform(-cfg.brightness, cfg.brightness);
  const contrast = 1 + rng.uniform(-cfg.contrast, cfg.contrast);
  const g = Math.log(1 + cfg.gamma);
  const gamma = Math.exp(rng.uniform(-g, g));
  const p: AugmentParams = { flip, angleDeg, shiftX, shiftY, scale, brightness, contrast, gamma };
  const el = cfg.elastic;
  if (el && el.alpha > 0 && rng.next() < el.p) p.displacement = elasticField(rng, height, width, Math.max(2, el.grid), el.alpha);
  return p;
}

function elasticField(rng: Rng, h: number, w: number, grid: number, alpha: number): Float32Array {
  const ctrl = new Float32Array(grid * grid * 2);
  for (let i = 0; i < ctrl.length; i++) ctrl[i] = rng.normal() * alpha;
  const out = new Float32Array(h * w * 2);
  for (let y = 0; y < h; y++) {
    const gy = h > 1 ? (y / (h - 1)) * (grid - 1) : 0;
    const y0 = Math.min(Math.floor(gy), grid - 2);
    const fy = gy - y0;
    for (let x = 0; x < w; x++) {
      const gx = w > 1 ? (x / (w - 1)) * (grid - 1) : 0;
      const x0 = Math.min(Math.floor(gx), grid - 2);
      const fx = gx - x0;
      for (let k = 0; k < 2; k++) {
        const a = ctrl[(y0 * grid + x0) * 2 + k]!;
        const b = ctrl[(y0 * grid + x0 + 1) * 2 + k]!;
        const c = ctrl[((y0 + 1) * grid + x0) * 2 + k]!;
        const d = ctrl[((y0 + 1) * grid + x0 + 1) * 2 + k]!;
        out[(y * w + x) * 2 + k] = (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy;
      }
    }
  }
  return out;
}

export function isGeometricIdentity(p: AugmentParams): boolean {
  return !p.flip && p.angleDeg === 0 && p.shiftX === 0 && p.shiftY === 0 && p.scale === 1 && !p.displacement;
}

/**
 * Source coordinates (x, y interleaved) for every output pixel. Forward model: flip, then rotate
 * and scale about the image centre, then translate; inverted here.
 */
export function sourceCoordinates(p: AugmentParams, height: number, width: number): Float32Array {
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  const t = (p.angleDeg * Math.PI) / 180;
  const cos = Math.cos(t) / p.scale;
  const sin = Math.sin(t) / p.scale;
  const out = new Float32Array(height * width * 2);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x - cx - p.shiftX;
      const v = y - cy - p.shiftY;
      let sx = cos * u + sin * v + cx;
      let sy = -sin * u + cos * v + cy;
      const i = (y * width + x) * 2;
      if (p.displacement) {
        sx += p.displacement[i]!;
        sy += p.displacement[i + 1]!;
      }
      if (p.flip) sx = width - 1 - sx;
      out[i] = sx;
      out[i + 1] = sy;
    }
  }
  return out;
}

/** Mirror a coordinate into [0, n-1] (REFLECT_101: the edge pixel is not repeated). */
function reflect(c: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let r = c % period;
  if (r < 0) r += period;
  return r > n - 1 ? period - r : r;
}

function sampleBilinear(src: Float32Array, off: number, h: number, w: number, sx: number, sy: number, border: AugmentConfig['border']): number {
  if (border === 'reflect') {
    sx = reflect(sx, w);
    sy = reflect(sy, h);
  } else if (sx < -0.5 || sy < -0.5 || sx > w - 0.5 || sy > h - 0.5) {
    return 0;
  }
  sx = Math.min(Math.max(sx, 0), w - 1);
  sy = Math.min(Math.max(sy, 0), h - 1);
  const x0 = Math.floor(sx);
  const y0 = Math.floor(sy);
  const fx = sx - x0;
  const fy = sy - y0;
  const x1 = fx > 0 ? x0 + 1 : x0;
  const y1 = fy > 0 ? y0 + 1 : y0;
  const r0 = off + y0 * w;
  const r1 = off + y1 * w;
  const top = src[r0 + x0]! * (1 - fx) + src[r0 + x1]! * fx;
  const bottom = src[r1 + x0]! * (1 - fx) + src[r1 + x1]! * fx;
  return fy > 0 ? top * (1 - fy) + bottom * fy : top;
}

function sampleNearest(src: Uint8Array, off: number, h: number, w: number, sx: number, sy: number, border: AugmentConfig['border']): number {
  if (border === 'reflect') {
    sx = reflect(sx, w);
    sy = reflect(sy, h);
  }
  const x = Math.round(sx);
  const y = Math.round(sy);
  if (x < 0 || y < 0 || x >= w || y >= h) return 0;
  return src[off + y * w + x]!;
}

export interface AugmentInput {
  /** C*H*W, intensities in 0..1 (before any dataset normalisation). */
  image: Float32Array;
  /** classes*H*W, 0/1. */
  mask: Uint8Array;
  channels: number;
  classes: number;
  height: number;
  width: number;
}

/** Returns new arrays; the inputs (often cache buffers) are left untouched. */
export function applyAugment(inp: AugmentInput, p: AugmentParams, border: AugmentConfig['border'] = 'reflect'): { image: Float32Array; mask: Uint8Array } {
  const { channels, classes, height: h, width: w } = inp;
  const plane = h * w;
  if (inp.image.length !== channels * plane) throw new RangeError(`image has ${inp.image.length} values, expected ${channels}x${h}x${w}`);
  if (inp.mask.length !== classes * plane) throw new RangeError(`mask has ${inp.mask.length} values, expected ${classes}x${h}x${w}`);
  let image: Float32Array;
  let mask: Uint8Array;
  if (isGeometricIdentity(p)) {
    image = inp.image.slice();
    mask = inp.mask.slice();
  } else {
    const src = sourceCoordinates(p, h, w);
    image = new Float32Array(inp.image.length);
    mask = new Uint8Array(inp.mask.length);
    for (let i = 0; i < plane; i++) {
      const sx = src[2 * i]!;
      const sy = src[2 * i + 1]!;
      for (let c = 0; c < channels; c++) image[c * plane + i] = sampleBilinear(inp.image, c * plane, h, w, sx, sy, border);
      for (let k = 0; k < classes; k++) mask[k * plane + i] = sampleNearest(inp.mask, k * plane, h, w, sx, sy, border);
    }
  }
  if (p.gamma !== 1 || p.contrast !== 1 || p.brightness !== 0) {
    for (let i = 0; i < image.length; i++) {
      let v = Math.min(Math.max(image[i]!, 0), 1);
      if (p.gamma !== 1) v = Math.pow(v, p.gamma);
      v = (v - 0.5) * p.contrast + 0.5 + p.brightness;
      image[i] = Math.min(Math.max(v, 0), 1);
    }
  }
  return { image, mask };
}
