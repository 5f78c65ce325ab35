/**
 * Chest-radiograph-like phantom (PA view, patient's right on the image left) with
 * pneumothorax-like lesions and their exact truth mask.
 *
 * The image is composed additively like a projection radiograph: body soft tissue (thicker in the
 * middle), minus the air of two lung fields, plus bones (spine, ribs, clavicles), plus lung vessels
 * and fine lung texture, then tone-mapped per image. A lesion is a crescent of lung along the
 * chest wall (apex or lateral wall) where the lung markings are absent, the air is a little darker,
 * and a thin bright visceral pleural line marks its inner edge. It is deliberately NOT much darker
 * than the lung around it (and outside-body air is far darker), so a segmenter has to learn the
 * missing texture, the pleural line and the location, not an intensity threshold.
 *
 * All geometry is in units of the image size, so the same seed gives the same anatomy at any size.
 */
import { createMask, type Mask } from '../core/mask.ts';
import { connectedComponents, distanceInside, drawTube, fbm, gaussianBlur, maskToField, valueNoise, whiteNoise } from './field.ts';
import { chance, normal, uniform, type Rng } from './rng.ts';

export type LesionSite = 'apex' | 'apicolateral' | 'lateral';
export type LungSide = 'right' | 'left';

export interface ChestPhantomOptions {
  /** Number of lesions to draw (0, 1 or 2). Default: 0 with probability `negativeFraction`, else 1 or 2. */
  lesions?: 0 | 1 | 2;
  /** Probability of a lesion-free image when `lesions` is not given. Default 0.4. */
  negativeFraction?: number;
  /** Probability that a positive image gets a second, separate lesion. Default 0.3. */
  secondLesionProbability?: number;
  /** Smallest lesion area as a fraction of the image area. Default 0.004 (0.4 %). */
  minLesionFraction?: number;
  /** Largest lesion area as a fraction of the image area. Default 0.045. */
  maxLesionFraction?: number;
}

export interface LesionInfo {
  /** Patient side: 'right' is on the image left. */
  lung: LungSide;
  site: LesionSite;
  /** Pixels of this lesion (before any merging with another lesion). */
  area: number;
}

export interface ChestPhantom {
  size: number;
  /** Row-major 8-bit luminance, MONOCHROME2 (air dark, bone bright). */
  pixels: Uint8Array;
  /** Union of all lesions. */
  mask: Mask;
  /** 8-connected components of `mask`, largest first; their union is `mask`. Empty for negatives. */
  components: Mask[];
  lesions: LesionInfo[];
  /** Both lung fields (lesion pixels included: a pneumothorax lies inside the lung outline). */
  lungs: Mask;
  /** Cardiac silhouette: the region the lungs leave out for the heart, down to the diaphragm. */
  heart: Mask;
}

interface Lung {
  side: -1 | 1; // -1: image left (patient's right), +1: image right
  mask: Uint8Array;
  dist: Float32Array; // distance (px) to the lung edge, inside only
  cx: number;
  cy: number;
}

interface Anatomy {
  mid: number;
  bodyHalfW: number;
  neckHalfW: number;
  shoulderV: number;
  lungTop: [number, number];
  lungOuter: [number, number];
  medW: number;
  dome: [number, number];
  heartCx: number;
  heartCy: number;
  heartAx: number;
  heartAy: number;
  ribSpacing: number;
  ribStart: number;
}

function sampleAnatomy(rng: Rng): Anatomy {
  const lungTop = uniform(rng, 0.12, 0.18);
  const domeR = uniform(rng, 0.66, 0.73);
  return {
    mid: 0.5 + uniform(rng, -0.02, 0.02),
    bodyHalfW: uniform(rng, 0.38, 0.45),
    neckHalfW: uniform(rng, 0.08, 0.11),
    // Shoulders reach full width (shoulderV + 0.07) before the lung apices start.
    shoulderV: lungTop - uniform(rng, 0.08, 0.11),
    lungTop: [lungTop + uniform(rng, -0.01, 0.01), lungTop + uniform(rng, -0.01, 0.01)],
    lungOuter: [uniform(rng, 0.33, 0.38), uniform(rng, 0.33, 0.38)],
    medW: uniform(rng, 0.05, 0.07),
    dome: [domeR, domeR + uniform(rng, 0.01, 0.04)],
    heartCx: uniform(rng, 0.0, 0.04),
    heartCy: uniform(rng, 0.6, 0.65),
    heartAx: uniform(rng, 0.17, 0.21),
    heartAy: uniform(rng, 0.14, 0.17),
    ribSpacing: uniform(rng, 0.05, 0.06),
    ribStart: lungTop + uniform(rng, 0.0, 0.02),
  };
}

/** Rasterises one lung as an implicit shape on domain-warped coordinates. */
function buildLung(an: Anatomy, side: -1 | 1, S: number, warpU: Float32Array, warpV: Float32Array): Omit<Lung, 'dist'> {
  const k = side < 0 ? 0 : 1;
  const top = an.lungTop[k];
  const outer = an.lungOuter[k];
  const dome = an.dome[k];
  const height = dome + 0.06 - top;
  const qApex = an.medW + 0.4 * (outer - an.medW);
  const mask = new Uint8Array(S * S);
  let sx = 0;
  let sy = 0;
  let n = 0;
  // Only the rows and the half of the image the lung can reach (warp is under 0.01).
  const y0 = Math.max(0, Math.floor((top - 0.02) * S));
  const y1 = Math.min(S, Math.ceil((top + height + 0.02) * S));
  const x0 = side < 0 ? Math.max(0, Math.floor((an.mid - outer - 0.05) * S)) : Math.floor(an.mid * S);
  const x1 = side < 0 ? Math.ceil(an.mid * S) : Math.min(S, Math.ceil((an.mid + outer + 0.05) * S));
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = y * S + x;
      const u = (x + 0.5) / S + warpU[i];
      const v = (y + 0.5) / S + warpV[i];
      const t = (v - top) / height;
      if (t <= 0 || t >= 1) continue;
      const q = side * (u - an.mid); // distance from the midline towards this lung's lateral side
      // Rounded apex: both walls start at qApex and open out elliptically.
      const tl = Math.min(1, t / 0.5);
      const lateral = qApex + (outer - qApex) * Math.sqrt(1 - (1 - tl) * (1 - tl)) + 0.02 * Math.max(0, t - 0.5);
      const tm = Math.min(1, t / 0.16);
      const medial = an.medW + (qApex - an.medW) * (1 - Math.sqrt(1 - (1 - tm) * (1 - tm)));
      if (q <= medial || q >= lateral) continue;
      // Diaphragm dome, highest mid-lung, with a deep lateral costophrenic recess.
      const tq = (q - medial) / (lateral - medial);
      const diaphragm = dome - 0.04 * Math.sin(Math.PI * Math.min(1, tq * 1.1)) + 0.07 * Math.pow(tq, 4);
      if (v > diaphragm) continue;
      // Heart: bulges far into the image-right lung (patient's left), a little into the other.
      const ax = side > 0 ? an.heartAx : an.heartAx * 0.45;
      const hx = (q - (side > 0 ? an.heartCx : -an.heartCx)) / ax;
      const hy = (v - an.heartCy) / an.heartAy;
      if (hx * hx + hy * hy < 1) continue;
      mask[i] = 1;
      sx += x;
      sy += y;
      n++;
    }
  }
  return { side, mask, cx: n ? sx / n : S / 2, cy: n ? sy / n : S / 2 };
}

/**
 * The heart as the lungs see it: the same warped, asymmetric ellipse `buildLung` cuts out of both
 * lungs (full width towards the patient's left, 0.45 of it towards the right), cut off at the
 * top of the left hemidiaphragm. Draws no randomness, so adding it changed no image.
 */
function buildHeart(an: Anatomy, S: number, warpU: Float32Array, warpV: Float32Array): Uint8Array {
  const mask = new Uint8Array(S * S);
  const cx = an.mid + an.heartCx;
  const bottom = an.dome[1] - 0.02;
  const y0 = Math.max(0, Math.floor((an.heartCy - an.heartAy - 0.02) * S));
  const y1 = Math.min(S, Math.ceil((Math.min(bottom, an.heartCy + an.heartAy) + 0.02) * S));
  const x0 = Math.max(0, Math.floor((cx - 0.45 * an.heartAx - 0.02) * S));
  const x1 = Math.min(S, Math.ceil((cx + an.heartAx + 0.02) * S));
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = y * S + x;
      const u = (x + 0.5) / S + warpU[i];
      const v = (y + 0.5) / S + warpV[i];
      if (v > bottom) continue;
      const d = u - cx;
      const hx = d / (d >= 0 ? an.heartAx : an.heartAx * 0.45);
      const hy = (v - an.heartCy) / an.heartAy;
      if (hx * hx + hy * hy < 1) mask[i] = 1;
    }
  }
  return mask;
}

interface LesionShape {
  theta0: number;
  halfWidth: number;
  thickness: number; // px
  power: number;
  ripple: number;
  rippleFreq: number;
  ripplePhase: number;
}

/** Fraction of full thickness at normalised angular offset s in (-1, 1). */
function profile(sh: LesionShape, s: number): number {
  const base = Math.pow(Math.max(0, 1 - s * s), sh.power);
  return base * (1 + sh.ripple * Math.sin(sh.rippleFreq * Math.PI * s + sh.ripplePhase));
}

function angleDiff(a: number, b: number): number {
  let d = a - b;
  while (d > Math.PI) d -= 2 * Math.PI;
  while (d < -Math.PI) d += 2 * Math.PI;
  return d;
}

/** Distance (px) from the lung centroid to its edge along angle theta, by marching the mask. */
function rayLength(lung: Lung, S: number, theta: number): number {
  const dx = Math.cos(theta);
  const dy = Math.sin(theta);
  let r = 0;
  for (;;) {
    const x = Math.round(lung.cx + dx * (r + 1));
    const y = Math.round(lung.cy + dy * (r + 1));
    if (x < 0 || y < 0 || x >= S || y >= S || lung.mask[y * S + x] === 0) return Math.max(r, 1);
    r++;
  }
}

function siteClock(rng: Rng, site: LesionSite): number {
  // Clock angle from straight up (0) towards the lateral wall (pi/2).
  if (site === 'apex') return uniform(rng, -0.1, 0.35);
  if (site === 'apicolateral') return uniform(rng, 0.5, 0.95);
  return uniform(rng, 1.1, 1.75);
}

/**
 * Places one lesion in `lung` with an area close to `targetArea` px, avoiding pixels already in
 * `taken` (plus a margin) so that separate lesions stay separate. Writes it into `lesionMask` and
 * its pleural line into `line`. Returns the area drawn.
 */
function placeLesion(
  rng: Rng,
  lung: Lung,
  S: number,
  site: LesionSite,
  targetArea: number,
  avoidTheta: number | undefined,
  lesionMask: Uint8Array,
  line: Float32Array,
): { area: number; theta0: number; halfWidth: number } {
  let clock = siteClock(rng, site);
  let theta0 = Math.atan2(-Math.cos(clock), lung.side * Math.sin(clock));
  if (avoidTheta !== undefined && Math.abs(angleDiff(theta0, avoidTheta)) < 1.2) {
    // Same lung as an earlier lesion: move to the other end of the periphery.
    clock = clock < 0.8 ? uniform(rng, 1.45, 1.8) : uniform(rng, -0.1, 0.1);
    theta0 = Math.atan2(-Math.cos(clock), lung.side * Math.sin(clock));
  }
  const R = rayLength(lung, S, theta0);
  const aspect = uniform(rng, 0.15, 0.35); // thickness / arc length
  const shape: LesionShape = {
    theta0,
    halfWidth: 0,
    thickness: 0,
    power: uniform(rng, 0.8, 1.4),
    ripple: uniform(rng, 0, 0.15),
    rippleFreq: uniform(rng, 1, 3),
    ripplePhase: uniform(rng, 0, 2 * Math.PI),
  };
  const arc = Math.sqrt(targetArea / (0.7 * aspect));
  shape.halfWidth = Math.min(1.0, Math.max(0.12, arc / (2 * R)));
  if (avoidTheta !== undefined) {
    const gap = Math.abs(angleDiff(theta0, avoidTheta));
    shape.halfWidth = Math.min(shape.halfWidth, Math.max(0.12, gap - 0.7));
  }
  // Candidate pixels: this lung, within the angular sector.
  const cand: number[] = [];
  const candS: number[] = [];
  for (let i = 0; i < lung.mask.length; i++) {
    if (lung.mask[i] === 0) continue;
    const x = i % S;
    const y = (i - x) / S;
    const s = angleDiff(Math.atan2(y - lung.cy, x - lung.cx), theta0) / shape.halfWidth;
    if (s > -1 && s < 1) {
      cand.push(i);
      candS.push(s);
    }
  }
  const prof = new Float32Array(cand.length);
  for (let j = 0; j < cand.length; j++) prof[j] = profile(shape, candS[j]);
  const areaFor = (t: number): number => {
    let a = 0;
    for (let j = 0; j < cand.length; j++) if (lung.dist[cand[j]] < t * prof[j]) a++;
    return a;
  };
  let lo = 0.5;
  let hi = 0.14 * S;
  if (areaFor(hi) <= targetArea) lo = hi;
  for (let it = 0; it < 22 && hi - lo > 0.05; it++) {
    const m = (lo + hi) / 2;
    if (areaFor(m) < targetArea) lo = m;
    else hi = m;
  }
  shape.thickness = lo === hi ? hi : (lo + hi) / 2;
  const lineSigma = Math.max(0.55, 0.0016 * S);
  let area = 0;
  for (let j = 0; j < cand.length; j++) {
    const i = cand[j];
    const edge = shape.thickness * prof[j];
    const d = lung.dist[i];
    if (d < edge) {
      lesionMask[i] = 1;
      area++;
    }
    // The visceral pleural line sits just inside the lung at the lesion's inner edge.
    const e = (d - edge - 0.6 * lineSigma) / lineSigma;
    if (e > -3 && e < 3) {
      const v = Math.exp(-e * e) * Math.min(1, edge / (2 * lineSigma));
      if (v > line[i]) line[i] = v;
    }
  }
  return { area, theta0, halfWidth: shape.halfWidth };
}

interface Branch {
  x: number;
  y: number;
  angle: number;
  length: number;
  radius: number;
  depth: number;
}

/** Vessel tree from the hilum: forking tapered tubes, brighter when thicker. */
function drawVesselTree(rng: Rng, layer: Float32Array, S: number, hx: number, hy: number, side: -1 | 1): void {
  const stack: Branch[] = [];
  const trunks = 9 + Math.floor(rng() * 4);
  for (let t = 0; t < trunks; t++) {
    // Fan from up-and-medial through lateral to down.
    const clock = -0.2 + (t + uniform(rng, 0.2, 0.8)) * (Math.PI * 0.95) / trunks;
    stack.push({
      x: hx,
      y: hy,
      angle: Math.atan2(-Math.cos(clock), side * Math.sin(clock)),
      length: S * uniform(rng, 0.06, 0.09),
      radius: S * uniform(rng, 0.004, 0.007),
      depth: 0,
    });
  }
  const r0 = S * 0.008;
  while (stack.length > 0) {
    const b = stack.pop() as Branch;
    let x = b.x;
    let y = b.y;
    let a = b.angle;
    const pieces = 3;
    for (let p = 0; p < pieces; p++) {
      a += normal(rng, 0, 0.2);
      const nx = x + (Math.cos(a) * b.length) / pieces;
      const ny = y + (Math.sin(a) * b.length) / pieces;
      const rA = b.radius * (1 - (0.2 * p) / pieces);
      const rB = b.radius * (1 - (0.2 * (p + 1)) / pieces);
      const amp = 0.075 * Math.pow(Math.min(1, rA / r0), 0.35);
      drawTube(layer, S, S, x, y, nx, ny, rA, rB, amp, 'max');
      x = nx;
      y = ny;
    }
    if (b.depth < 7 && b.radius * 0.72 > S * 0.0006) {
      const spread = uniform(rng, 0.25, 0.55);
      const bias = normal(rng, 0, 0.1);
      for (const sgn of [-1, 1]) {
        stack.push({
          x,
          y,
          angle: a + sgn * spread * uniform(rng, 0.6, 1.2) + bias,
          length: b.length * uniform(rng, 0.62, 0.8),
          radius: b.radius * uniform(rng, 0.65, 0.78),
          depth: b.depth + 1,
        });
      }
    }
  }
}

/**
 * Adds a curved bone band along v = centre(q) for q in [q0, q1] (q: distance from the midline
 * towards `side`), with a brighter cortical rim, tapered at both ends.
 */
function drawBoneBand(
  layer: Float32Array,
  S: number,
  mid: number,
  side: -1 | 1,
  q0: number,
  q1: number,
  centre: (t: number) => number,
  width: number,
  amplitude: number,
): void {
  const xa = Math.round((mid + side * q0) * S);
  const xb = Math.round((mid + side * q1) * S);
  const xStart = Math.max(0, Math.min(xa, xb));
  const xEnd = Math.min(S - 1, Math.max(xa, xb));
  const span = Math.max(1, Math.abs(xb - xa));
  for (let x = xStart; x <= xEnd; x++) {
    const t = Math.abs(x - xa) / span;
    const vy = centre(t) * S;
    const slope = ((centre(Math.min(1, t + 0.01)) - centre(Math.max(0, t - 0.01))) * S) / (0.02 * span);
    const half = 0.5 * width * S * Math.sqrt(1 + slope * slope);
    const taper = Math.min(1, t / 0.08, (1 - t) / 0.08);
    if (taper <= 0 || half < 0.3) continue;
    const y0 = Math.max(0, Math.floor(vy - half - 1));
    const y1 = Math.min(S - 1, Math.ceil(vy + half + 1));
    for (let y = y0; y <= y1; y++) {
      const e = (y + 0.5 - vy) / half;
      const ae = Math.abs(e);
      if (ae >= 1.15) continue;
      const body = ae < 1 ? Math.sqrt(1 - e * e) : 0;
      const rim = Math.exp(-((ae - 0.88) * (ae - 0.88)) / 0.012);
      layer[y * S + x] += amplitude * taper * (0.55 * body + 0.45 * rim);
    }
  }
}

function drawRibs(rng: Rng, layer: Float32Array, S: number, an: Anatomy): void {
  for (const side of [-1, 1] as const) {
    const k = side < 0 ? 0 : 1;
    const outer = an.lungOuter[k] + 0.04;
    for (let r = 0; r < 10; r++) {
      const v0 = an.ribStart + r * an.ribSpacing + uniform(rng, -0.004, 0.004);
      const rise = uniform(rng, 0.02, 0.035);
      const drop = uniform(rng, 0.11, 0.15) + r * 0.004;
      const width = uniform(rng, 0.018, 0.024) * (1 + r * 0.02);
      // Posterior rib: leaves the spine, arches up, curves down at the lateral wall.
      drawBoneBand(layer, S, an.mid, side, 0.035, outer, (t) => v0 - rise * Math.sin(Math.PI * 0.7 * t) + drop * Math.pow(t, 2.5), width, 0.085);
      // Anterior rib: fainter, descends from the lateral wall towards the sternum.
      if (r < 7) {
        const va = v0 + uniform(rng, 0.07, 0.09);
        drawBoneBand(layer, S, an.mid, side, 0.1, outer - 0.01, (t) => va + 0.15 * (1 - t) - 0.04 * (1 - t) * (1 - t), width * 0.9, 0.045);
      }
    }
    // Clavicle: from the sternal notch laterally and slightly up, a gentle S.
    const cv = an.lungTop[k] + uniform(rng, 0.05, 0.08);
    drawBoneBand(layer, S, an.mid, side, 0.03, 0.3, (t) => cv - 0.05 * t + 0.012 * Math.sin(2 * Math.PI * t), uniform(rng, 0.022, 0.028), 0.12);
  }
}

/** Resolution of the tone curve lookup table (finer than 8-bit output, so no banding). */
const TONE_STEPS = 4096;

function pickSite(rng: Rng): LesionSite {
  const r = rng();
  return r < 0.35 ? 'apex' : r < 0.7 ? 'apicolateral' : 'lateral';
}

/**
 * One chest phantom of `size` x `size`. Deterministic for a given rng state; consumes a
 * size-dependent amount of randomness, so derive a fresh rng per image (see deriveSeed).
 */
export function chestPhantom(rng: Rng, size: number, opts: ChestPhantomOptions = {}): ChestPhantom {
  if (!Number.isInteger(size) || size < 32 || size > 8192) throw new RangeError(`chest phantom size must be an integer in 32..8192, got ${size}`);
  const S = size;
  const N = S * S;
  const an = sampleAnatomy(rng);
  const nLesions =
    opts.lesions ??
    (chance(rng, opts.negativeFraction ?? 0.4) ? 0 : chance(rng, opts.secondLesionProbability ?? 0.3) ? 2 : 1);
  const minF = opts.minLesionFraction ?? 0.004;
  const maxF = Math.max(minF, opts.maxLesionFraction ?? 0.045);

  // Low-frequency domain warp keeps the outlines organic instead of perfectly geometric.
  const warpU = valueNoise(rng, S, S, S / 4);
  const warpV = valueNoise(rng, S, S, S / 4);
  for (let i = 0; i < N; i++) {
    warpU[i] *= 0.008;
    warpV[i] *= 0.008;
  }
  const shapes = [buildLung(an, -1, S, warpU, warpV), buildLung(an, 1, S, warpU, warpV)];
  // The lungs are separated by the mediastinum, so one distance transform of their union gives
  // each lung's own distance to its edge.
  const lungUnion = new Uint8Array(N);
  for (let i = 0; i < N; i++) lungUnion[i] = shapes[0].mask[i] | shapes[1].mask[i];
  // Distances only matter for placing lesions.
  const dist = nLesions > 0 ? distanceInside(lungUnion, S, S) : new Float32Array(N);
  const lungs: Lung[] = shapes.map((l) => ({ ...l, dist }));

  // Lesions.
  const lesionMask = new Uint8Array(N);
  const pleural = new Float32Array(N);
  const lesions: LesionInfo[] = [];
  let first: { lungIndex: number; theta0: number } | undefined;
  for (let l = 0; l < nLesions; l++) {
    let lungIndex = rng() < 0.5 ? 0 : 1;
    if (first && chance(rng, 0.6)) lungIndex = 1 - first.lungIndex;
    const site = pickSite(rng);
    const target = N * Math.exp(uniform(rng, Math.log(minF), Math.log(maxF)));
    const avoid = first && first.lungIndex === lungIndex ? first.theta0 : undefined;
    const placed = placeLesion(rng, lungs[lungIndex], S, site, target, avoid, lesionMask, pleural);
    lesions.push({ lung: lungIndex === 0 ? 'right' : 'left', site, area: placed.area });
    if (!first) first = { lungIndex, theta0: placed.theta0 };
  }

  // Body outline: neck, shoulders, torso; elliptical cross-section so the middle is denser.
  const body = new Float32Array(N);
  for (let y = 0; y < S; y++) {
    const v = (y + 0.5) / S;
    const ts = Math.min(1, Math.max(0, (v - an.shoulderV) / 0.07));
    const hw = an.neckHalfW + (an.bodyHalfW - an.neckHalfW) * ts * ts * (3 - 2 * ts);
    for (let x = 0; x < S; x++) {
      const i = y * S + x;
      const u = (x + 0.5) / S + warpU[i] * 0.5;
      const r = Math.abs(u - an.mid) / hw;
      body[i] = r < 1 ? Math.sqrt(1 - r * r) : 0;
    }
  }

  const lungField = maskToField(lungs[0].mask);
  for (let i = 0; i < N; i++) if (lungs[1].mask[i]) lungField[i] = 1;
  gaussianBlur(lungField, S, S, 0.003 * S);
  const lesionField = maskToField(lesionMask);
  gaussianBlur(lesionField, S, S, 0.0012 * S);

  // Lung markings: vessel trees plus fine reticular texture, both absent inside lesions.
  const vessels = new Float32Array(N);
  for (const lung of lungs) {
    const hx = (an.mid + lung.side * (an.medW + uniform(rng, 0.03, 0.05))) * S;
    const hy = uniform(rng, 0.4, 0.46) * S;
    drawVesselTree(rng, vessels, S, hx, hy, lung.side);
  }
  const retic = valueNoise(rng, S, S, S / 45);
  const retic2 = valueNoise(rng, S, S, S / 90);
  for (let i = 0; i < N; i++) {
    const r1 = 1 - Math.abs(retic[i]);
    const r2 = 1 - Math.abs(retic2[i]);
    retic[i] = r1 * r1 * r1 * r1 * 0.6 + r2 * r2 * r2 * r2 * 0.4;
  }

  const bones = new Float32Array(N);
  drawRibs(rng, bones, S, an);
  // Spine: a dense column with darker disc spaces, seen through the mediastinum.
  const vertebra = uniform(rng, 0.032, 0.04);
  const spinePhase = rng();
  const spineX0 = Math.max(0, Math.floor((an.mid - 0.045) * S));
  const spineX1 = Math.min(S, Math.ceil((an.mid + 0.045) * S));
  for (let y = 0; y < S; y++) {
    const v = (y + 0.5) / S;
    const ph = (v / vertebra + spinePhase) % 1;
    const disc = Math.exp(-((ph - 0.5) * (ph - 0.5)) / 0.004);
    for (let x = spineX0; x < spineX1; x++) {
      const i = y * S + x;
      const r = Math.abs((x + 0.5) / S + warpU[i] * 0.3 - an.mid) / 0.032;
      if (r < 1.2) bones[i] += 0.05 * Math.max(0, 1 - Math.pow(r / 1.2, 6)) * (1 - 0.45 * disc) + (r > 0.85 && r < 1.15 ? 0.015 : 0);
    }
  }

  // Gastric bubble under the left hemidiaphragm: dark, textureless air that is NOT a lesion.
  const bubble = new Float32Array(N);
  if (chance(rng, 0.6)) {
    const bx = (an.mid + uniform(rng, 0.15, 0.24)) * S;
    const by = (an.dome[1] + uniform(rng, 0.04, 0.08)) * S;
    const ax = uniform(rng, 0.03, 0.06) * S;
    const ay = uniform(rng, 0.02, 0.035) * S;
    const soft = Math.max(0.7, 0.002 * S);
    for (let y = Math.max(0, Math.floor(by - ay - 2)); y < Math.min(S, Math.ceil(by + ay + 2)); y++) {
      for (let x = Math.max(0, Math.floor(bx - ax - 2)); x < Math.min(S, Math.ceil(bx + ax + 2)); x++) {
        const ex = (x + 0.5 - bx) / ax;
        const ey = (y + 0.5 - by) / ay;
        // Flat fluid level at the bottom, dome on top.
        // Soft edges computed directly (about 0.002 of the image), no full-image blur needed.
        const rim = ((1 - Math.sqrt(ex * ex + ey * ey)) * Math.min(ax, ay)) / soft + 0.5;
        const level = ((0.35 - ey) * ay) / soft + 0.5;
        const val = Math.min(1, rim, level);
        if (val > 0) bubble[y * S + x] = val;
      }
    }
  }

  // Occasional ECG lead / line: a thin bright curve crossing the chest.
  const devices = new Float32Array(N);
  if (chance(rng, 0.3)) {
    let x = uniform(rng, 0.15, 0.85) * S;
    let y = uniform(rng, 0.05, 0.2) * S;
    let a = uniform(rng, 0.3, 2.8);
    const r = Math.max(0.6, 0.002 * S);
    for (let s = 0; s < 40; s++) {
      a += normal(rng, 0, 0.08);
      const nx = x + Math.cos(a) * S * 0.02;
      const ny = y + Math.sin(a) * S * 0.02;
      drawTube(devices, S, S, x, y, nx, ny, r, r, 0.2, 'max');
      x = nx;
      y = ny;
    }
  }

  const lowFreq = fbm(rng, S, S, S / 3, 3);
  const lungVar = fbm(rng, S, S, S / 6, 2);
  const softTex = fbm(rng, S, S, S / 12, 2);
  const lesionDelta = uniform(rng, 0.035, 0.065);
  const lungAir = uniform(rng, 0.26, 0.32);
  const softDensity = uniform(rng, 0.5, 0.6);
  const img = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    // Lungs never extend past the body outline.
    const lf = lungField[i] * Math.min(1, 4 * body[i]);
    const les = lesionField[i];
    const markings = lf * (1 - les) * (vessels[i] + 0.045 * retic[i]);
    img[i] =
      0.03 +
      body[i] * (softDensity + 0.03 * softTex[i]) -
      lf * (lungAir + 0.035 * lungVar[i]) +
      markings -
      les * lesionDelta +
      0.11 * pleural[i] +
      bones[i] * (0.6 + 0.4 * body[i]) -
      bubble[i] * 0.22 * body[i] +
      devices[i] +
      0.04 * lowFreq[i];
  }
  // Detector blur, then quantum/film grain on top.
  gaussianBlur(img, S, S, Math.max(0.45, 0.0008 * S));
  const grain = whiteNoise(rng, N, 0.018);
  const gain = uniform(rng, 0.85, 1.15);
  const offset = uniform(rng, -0.05, 0.05);
  const gamma = uniform(rng, 0.8, 1.25);
  const toneLut = new Uint8Array(TONE_STEPS + 1);
  for (let k = 0; k <= TONE_STEPS; k++) toneLut[k] = Math.round(255 * Math.pow(k / TONE_STEPS, gamma));
  const pixels = new Uint8Array(N);
  for (let i = 0; i < N; i++) {
    let v = (img[i] + grain[i]) * gain + offset;
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    pixels[i] = toneLut[Math.round(v * TONE_STEPS)];
  }

  const comps = nLesions > 0 ? connectedComponents(lesionMask, S, S) : [];
  const heart = buildHeart(an, S, warpU, warpV);
  // The heart and lungs share one boundary by construction; lungs win any rounding disagreement.
  for (let i = 0; i < N; i++) if (lungUnion[i]) heart[i] = 0;
  return {
    size: S,
    pixels,
    mask: createMask(S, S, lesionMask),
    components: comps.map((c) => createMask(S, S, c)),
    lesions,
    lungs: createMask(S, S, lungUnion),
    heart: createMask(S, S, heart),
  };
}
