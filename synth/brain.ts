/**
 * Brain MR-slice-like phantom (FLAIR-like contrast, axial) in the style of the Kaggle LGG set:
 * scalp, dark skull, thin CSF, cortex with sulci, darker white matter, ventricles, a falx, and an
 * irregular tumour that is brighter (or darker with a bright rim) than the brain around it.
 *
 * A case is a `BrainVolume`: one head and one tumour sampled once, cut into slices, so the tumour
 * grows and shrinks consistently from slice to slice like a real series. `brainPhantom` is the
 * one-slice shortcut for tests.
 */
import { createMask, type Mask } from '../core/mask.ts';
import { connectedComponents, distanceInside, fbm, gaussianBlur, maskToField, valueNoise } from './field.ts';
import { chance, deriveSeed, mulberry32, normal, uniform, type Rng } from './rng.ts';

export type TumourLook = 'bright' | 'rim';

export interface TumourParams {
  /** Centre in head-normalised units (x, y in -1..1 of the head ellipse, z in 0..1 of the series). */
  cx: number;
  cy: number;
  cz: number;
  /** Radii: rx, ry in image-size units, rz in series units. */
  rx: number;
  ry: number;
  rz: number;
  look: TumourLook;
  contrast: number;
  harmonics: { k: number; amp: number; phase: number; zFreq: number }[];
}

export interface BrainVolume {
  seed: number;
  headAx: number;
  headAy: number;
  headCx: number;
  headCy: number;
  tilt: number;
  ventricleSize: number;
  tumour?: TumourParams;
}

export interface BrainVolumeOptions {
  /** Probability that the case has a tumour at all. Default 1 (every LGG case has one). */
  tumourProbability?: number;
}

export interface BrainSlice {
  size: number;
  /** Row-major intensity in 0..1 before quantisation (for 16-bit output). */
  intensity: Float32Array;
  /** 8-bit rendering of `intensity`. */
  pixels: Uint8Array;
  mask: Mask;
  components: Mask[];
}

export function sampleBrainVolume(rng: Rng, opts: BrainVolumeOptions = {}): BrainVolume {
  const vol: BrainVolume = {
    seed: Math.floor(rng() * 2 ** 32),
    headAx: uniform(rng, 0.33, 0.38),
    headAy: uniform(rng, 0.4, 0.45),
    headCx: 0.5 + uniform(rng, -0.03, 0.03),
    headCy: 0.5 + uniform(rng, -0.03, 0.03),
    tilt: uniform(rng, -0.12, 0.12),
    ventricleSize: uniform(rng, 0.8, 1.3),
  };
  if (chance(rng, opts.tumourProbability ?? 1)) {
    const harmonics = [];
    for (let k = 2; k <= 6; k++) harmonics.push({ k, amp: uniform(rng, 0, 0.16 / (k - 1)), phase: uniform(rng, 0, 2 * Math.PI), zFreq: uniform(rng, -4, 4) });
    // Keep the tumour inside the brain: its centre well within the head ellipse.
    const ang = uniform(rng, 0, 2 * Math.PI);
    const rad = Math.sqrt(rng()) * 0.5;
    vol.tumour = {
      cx: Math.cos(ang) * rad,
      cy: Math.sin(ang) * rad,
      cz: uniform(rng, 0.35, 0.65),
      rx: uniform(rng, 0.05, 0.11),
      ry: uniform(rng, 0.05, 0.11),
      rz: uniform(rng, 0.12, 0.25),
      look: chance(rng, 0.7) ? 'bright' : 'rim',
      contrast: uniform(rng, 0.22, 0.35),
      harmonics,
    };
  }
  return vol;
}

/**
 * Renders axial slice `z` (0 = bottom of the series, 1 = top) of `vol`. The head cross-section
 * shrinks towards both ends; slices outside the tumour's extent have an empty mask.
 */
export function renderBrainSlice(vol: BrainVolume, z: number, size: number): BrainSlice {
  if (!Number.isInteger(size) || size < 32 || size > 8192) throw new RangeError(`brain phantom size must be an integer in 32..8192, got ${size}`);
  const S = size;
  const N = S * S;
  // Per-slice randomness is derived from the case seed and the slice position, so re-rendering a
  // slice is reproducible and neighbouring slices differ like real ones do.
  const rng = mulberry32(deriveSeed(vol.seed, Math.round(z * 1e6)));
  const zs = Math.max(0.25, Math.sqrt(Math.max(0, 1 - Math.pow((z - 0.45) / 0.75, 2))));
  const ax = vol.headAx * zs;
  const ay = vol.headAy * (0.3 + 0.7 * zs);
  const cos = Math.cos(vol.tilt);
  const sin = Math.sin(vol.tilt);

  const warpA = valueNoise(rng, S, S, S / 5);
  const warpB = valueNoise(rng, S, S, S / 5);
  // Head-normalised elliptical radius per pixel (1 at the outer scalp edge) and head-frame coords.
  const rho = new Float32Array(N);
  const hxA = new Float32Array(N);
  const hyA = new Float32Array(N);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const i = y * S + x;
      const dx = (x + 0.5) / S - vol.headCx;
      const dy = (y + 0.5) / S - vol.headCy;
      const u = cos * dx + sin * dy;
      const v = -sin * dx + cos * dy;
      const hx = u / ax;
      const hy = v / ay;
      hxA[i] = hx;
      hyA[i] = hy;
      rho[i] = Math.sqrt(hx * hx + hy * hy) * (1 + 0.015 * warpA[i]);
    }
  }
  // Layers as fractions of the head radius: scalp 1 -> 0.93, skull -> 0.86, CSF -> 0.84.
  const scalp = 0.93;
  const skull = 0.86;
  const csf = 0.835;
  const brainMask = new Uint8Array(N);
  for (let i = 0; i < N; i++) brainMask[i] = rho[i] < csf ? 1 : 0;
  const depth = distanceInside(brainMask, S, S); // px from the brain surface

  // Cortex folding: sulci are thin dark CSF lines where a band-limited noise crosses zero,
  // reaching in from the surface; the grey/white border follows the folds.
  const fold = fbm(rng, S, S, S / 10, 2, 0.5);
  const fold2 = valueNoise(rng, S, S, S / 30);
  const tex = fbm(rng, S, S, S / 20, 3);
  const bias = valueNoise(rng, S, S, S / 1.5);
  const cortex = 0.045 * S;
  const nSulci = Math.round(uniform(rng, 34, 46));

  // Ventricles: two mirrored crescents around the midline, largest in mid-series slices.
  const vScale = vol.ventricleSize * Math.max(0, 1 - Math.pow((z - 0.5) / 0.28, 2));

  // Tumour cross-section at this z.
  const tumourMask = new Uint8Array(N);
  const tumourEdge = new Float32Array(N); // 1 at the tumour centre falling to 0 at its edge
  const t = vol.tumour;
  if (t) {
    const dz = (z - t.cz) / t.rz;
    if (Math.abs(dz) < 1) {
      const scale = Math.sqrt(1 - dz * dz);
      const rx = t.rx * scale;
      const ry = t.ry * scale;
      const tcx = t.cx * ax * 0.55;
      const tcy = t.cy * ay * 0.55;
      for (let i = 0; i < N; i++) {
        if (brainMask[i] === 0) continue;
        const px = hxA[i] * ax - tcx;
        const py = hyA[i] * ay - tcy;
        const ang = Math.atan2(py / ry, px / rx);
        let f = 1;
        for (const h of t.harmonics) f += h.amp * Math.sin(h.k * ang + h.phase + h.zFreq * dz);
        const r = Math.sqrt((px / rx) * (px / rx) + (py / ry) * (py / ry)) / f;
        if (r < 1) {
          tumourMask[i] = 1;
          tumourEdge[i] = 1 - r;
        }
      }
    }
  }
  const tumourSoft = maskToField(tumourMask);
  gaussianBlur(tumourSoft, S, S, 0.002 * S);

  const img = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    const r = rho[i];
    let v = 0;
    if (r < 1) {
      if (r >= scalp) {
        v = 0.55 + 0.15 * tex[i]; // scalp fat
      } else if (r >= skull) {
        v = 0.06 + 0.05 * Math.exp(-Math.pow((r - (scalp + skull) / 2) / 0.015, 2)); // cortical bone, faint diploe
      } else if (r >= csf) {
        v = 0.12; // CSF (suppressed in FLAIR)
      } else {
        const d = depth[i];
        // Gyri: sulci run inwards from the surface at a warped angular frequency; grey matter
        // lines each sulcus, so the grey/white border dips along them.
        const phase = nSulci * Math.atan2(hyA[i], hxA[i]) + 9 * fold[i] + 0.004 * S * Math.max(0, cortex - d) * fold2[i] / cortex;
        const sc = 0.5 + 0.5 * Math.cos(phase);
        const sc2 = sc * sc;
        const sc4 = sc2 * sc2;
        const sulcusDepth = cortex * (1.0 + 0.9 * fold2[i]);
        const isGrey = d < cortex * 0.45 + sulcusDepth * 0.9 * sc2 * sc;
        v = isGrey ? 0.54 : 0.45;
        v += 0.03 * tex[i];
        const sulcus = sc4 * sc4 * Math.max(0, 1 - d / sulcusDepth);
        v = v * (1 - 0.8 * sulcus) + 0.12 * 0.8 * sulcus;
        // Interhemispheric fissure (falx) along the head's vertical axis.
        const fx = Math.abs(hxA[i] * ax) / (0.004 + 0.0025 * (1 + fold2[i]));
        if (fx < 1 && Math.abs(hyA[i]) < 0.8) v = v * (0.4 + 0.6 * fx) + 0.12 * (1 - fx) * 0.6;
        if (vScale > 0) {
          // Lateral ventricles: frontal horns near the midline diverging backwards into the
          // bodies / occipital horns, like a butterfly.
          const hy = hyA[i];
          const tv = (hy + 0.38) / 0.7;
          if (tv > 0 && tv < 1) {
            const centre = 0.06 + 0.14 * tv * tv;
            const half = vScale * (0.012 + 0.05 * Math.sqrt(Math.sin(Math.PI * tv)));
            const off = Math.abs(Math.abs(hxA[i]) - centre) / half;
            if (off < 1) v = 0.1 + 0.03 * off;
            else if (off < 1.5) v += 0.1 * (1.5 - off); // periventricular FLAIR brightening
          }
        }
      }
      if (t && tumourSoft[i] > 0) {
        const e = tumourEdge[i];
        const inner = t.look === 'bright' ? t.contrast * (0.85 + 0.15 * tex[i]) : -0.18 + 0.05 * tex[i];
        const rim = t.look === 'rim' ? t.contrast * Math.exp(-Math.pow((e - 0.08) / 0.07, 2)) : 0;
        const base = t.look === 'bright' ? 0.5 : 0.45;
        v = v * (1 - tumourSoft[i]) + tumourSoft[i] * (base + inner * Math.min(1, e * 6 + 0.3) + rim);
      }
      v *= 1 + 0.12 * bias[i];
    }
    img[i] = v;
  }
  gaussianBlur(img, S, S, Math.max(0.4, 0.0015 * S));
  // Rician noise: magnitude of a complex signal with Gaussian noise in both channels.
  const sigma = 0.025;
  const pixels = new Uint8Array(N);
  for (let i = 0; i < N; i++) {
    const re = img[i] + normal(rng, 0, sigma);
    const im = normal(rng, 0, sigma);
    const m = Math.min(1, Math.sqrt(re * re + im * im));
    img[i] = m;
    pixels[i] = Math.round(m * 255);
  }
  const comps = connectedComponents(tumourMask, S, S);
  return {
    size: S,
    intensity: img,
    pixels,
    mask: createMask(S, S, tumourMask),
    components: comps.map((c) => createMask(S, S, c)),
  };
}

export interface BrainPhantomOptions extends BrainVolumeOptions {
  /** Slice position in 0..1; default: the tumour centre when there is one, else 0.5. */
  z?: number;
}

/** One slice from a freshly sampled head; with the default z it shows the tumour at its largest. */
export function brainPhantom(rng: Rng, size: number, opts: BrainPhantomOptions = {}): BrainSlice {
  const vol = sampleBrainVolume(rng, opts);
  return renderBrainSlice(vol, opts.z ?? vol.tumour?.cz ?? 0.5, size);
}
