/**
 * Float32 image-field primitives the phantoms are built from: value noise, separable blurs,
 * a Euclidean distance transform, connected components and anti-aliased tube drawing.
 * Everything works on flat row-major typed arrays with plain loops (no per-pixel closures), which
 * is what keeps a 1024x1024 phantom well under a second.
 */
import type { Rng } from './rng.ts';

/**
 * Value noise on a lattice of `cell` pixels, smoothstep-interpolated, roughly uniform in [-1, 1].
 * Interpolation is separable (lattice rows along x first, then y), so one octave is O(w*h).
 */
export function valueNoise(rng: Rng, w: number, h: number, cell: number): Float32Array {
  const c = Math.max(1, cell);
  const gw = Math.ceil(w / c) + 2;
  const gh = Math.ceil(h / c) + 2;
  const lattice = new Float32Array(gw * gh);
  for (let i = 0; i < lattice.length; i++) lattice[i] = rng() * 2 - 1;
  // A random sub-cell offset so octaves of the same cell size do not share lattice lines.
  const ox = rng() * c;
  const oy = rng() * c;
  const x0 = new Int32Array(w);
  const wx = new Float32Array(w);
  for (let x = 0; x < w; x++) {
    const g = (x + ox) / c;
    const gi = Math.floor(g);
    const t = g - gi;
    x0[x] = gi;
    wx[x] = t * t * (3 - 2 * t);
  }
  // Interpolate along x for every lattice row: rowsX[gy * w + x].
  const rowsX = new Float32Array(gh * w);
  for (let gy = 0; gy < gh; gy++) {
    const base = gy * gw;
    const out = gy * w;
    for (let x = 0; x < w; x++) {
      const a = lattice[base + x0[x]];
      const b = lattice[base + x0[x] + 1];
      rowsX[out + x] = a + (b - a) * wx[x];
    }
  }
  const res = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const g = (y + oy) / c;
    const gi = Math.floor(g);
    let t = g - gi;
    t = t * t * (3 - 2 * t);
    const ra = gi * w;
    const rb = ra + w;
    const out = y * w;
    for (let x = 0; x < w; x++) {
      const a = rowsX[ra + x];
      res[out + x] = a + (rowsX[rb + x] - a) * t;
    }
  }
  return res;
}

/** Fractal sum of value-noise octaves (cell halves each octave), normalised to roughly [-1, 1]. */
export function fbm(rng: Rng, w: number, h: number, baseCell: number, octaves: number, persistence = 0.5): Float32Array {
  const out = new Float32Array(w * h);
  let amp = 1;
  let total = 0;
  let cell = baseCell;
  for (let o = 0; o < octaves && cell >= 1; o++) {
    const n = valueNoise(rng, w, h, cell);
    for (let i = 0; i < out.length; i++) out[i] += amp * n[i];
    total += amp;
    amp *= persistence;
    cell /= 2;
  }
  if (total > 0) for (let i = 0; i < out.length; i++) out[i] /= total;
  return out;
}

export function whiteNoise(rng: Rng, n: number, amplitude: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng() * 2 - 1) * amplitude;
  return out;
}

/**
 * One horizontal then one vertical running-sum box pass of radius r (edges clamp), in place.
 * The vertical pass streams whole rows (a running sum per column) to stay cache-friendly.
 */
function boxPass(data: Float32Array, w: number, h: number, r: number, tmp: Float32Array): void {
  if (r <= 0) return;
  const inv = 1 / (2 * r + 1);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    let acc = 0;
    for (let k = -r; k <= r; k++) acc += data[row + (k < 0 ? 0 : k >= w ? w - 1 : k)];
    for (let x = 0; x < w; x++) {
      tmp[row + x] = acc * inv;
      const add = x + r + 1 < w ? x + r + 1 : w - 1;
      const sub = x - r > 0 ? x - r : 0;
      acc += data[row + add] - data[row + sub];
    }
  }
  const acc = new Float64Array(w);
  for (let k = -r; k <= r; k++) {
    const row = (k < 0 ? 0 : k >= h ? h - 1 : k) * w;
    for (let x = 0; x < w; x++) acc[x] += tmp[row + x];
  }
  for (let y = 0; y < h; y++) {
    const out = y * w;
    const add = (y + r + 1 < h ? y + r + 1 : h - 1) * w;
    const sub = (y - r > 0 ? y - r : 0) * w;
    for (let x = 0; x < w; x++) {
      data[out + x] = acc[x] * inv;
      acc[x] += tmp[add + x] - tmp[sub + x];
    }
  }
}

/**
 * Approximate Gaussian blur by three box passes (variance of three boxes of radius r is
 * r(r+1)), in place. Cost does not depend on sigma. Sigma below ~0.6 px is a no-op.
 */
export function gaussianBlur(data: Float32Array, w: number, h: number, sigma: number): Float32Array {
  const r = Math.round(Math.sqrt(sigma * sigma + 0.25) - 0.5);
  if (r <= 0) {
    if (sigma >= 0.4) smallBlur(data, w, h, sigma);
    return data;
  }
  const tmp = new Float32Array(data.length);
  for (let p = 0; p < 3; p++) boxPass(data, w, h, r, tmp);
  return data;
}

/** Exact separable 3-tap Gaussian for sub-pixel sigmas, where box passes cannot go. */
function smallBlur(data: Float32Array, w: number, h: number, sigma: number): void {
  const e = Math.exp(-1 / (2 * sigma * sigma));
  const k0 = 1 / (1 + 2 * e);
  const k1 = e * k0;
  const tmp = new Float32Array(data.length);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      const l = data[row + (x > 0 ? x - 1 : 0)];
      const r = data[row + (x < w - 1 ? x + 1 : x)];
      tmp[row + x] = k0 * data[row + x] + k1 * (l + r);
    }
  }
  for (let y = 0; y < h; y++) {
    const up = (y > 0 ? y - 1 : 0) * w;
    const dn = (y < h - 1 ? y + 1 : y) * w;
    const row = y * w;
    for (let x = 0; x < w; x++) data[row + x] = k0 * tmp[row + x] + k1 * (tmp[up + x] + tmp[dn + x]);
  }
}

/** Converts a binary mask to a float field (0/1), e.g. to blur a hard edge into a soft one. */
export function maskToField(mask: Uint8Array): Float32Array {
  const out = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = mask[i] !== 0 ? 1 : 0;
  return out;
}

/** 1-D squared distance transform of Felzenszwalb & Huttenlocher (lower envelope of parabolas). */
function edt1d(f: Float64Array, n: number, d: Float64Array, v: Int32Array, z: Float64Array): void {
  let k = 0;
  v[0] = 0;
  z[0] = -Infinity;
  z[1] = Infinity;
  for (let q = 1; q < n; q++) {
    if (f[q] === Infinity) continue;
    if (f[v[k]] === Infinity) {
      v[k] = q;
      continue;
    }
    let s = (f[q] + q * q - (f[v[k]] + v[k] * v[k])) / (2 * q - 2 * v[k]);
    while (s <= z[k]) {
      k--;
      s = (f[q] + q * q - (f[v[k]] + v[k] * v[k])) / (2 * q - 2 * v[k]);
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = Infinity;
  }
  if (f[v[0]] === Infinity) {
    for (let q = 0; q < n; q++) d[q] = Infinity;
    return;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1] < q) k++;
    const dq = q - v[k];
    d[q] = dq * dq + f[v[k]];
  }
}

/**
 * Exact Euclidean distance (pixels) from every nonzero pixel of `mask` to the nearest zero pixel;
 * zero pixels get 0. Pixels outside the image count as zero, so the border is a boundary too.
 * Work is limited to the bounding box of the nonzero pixels.
 */
export function distanceInside(mask: Uint8Array, w: number, h: number): Float32Array {
  const out = new Float32Array(w * h);
  let minX = w;
  let maxX = -1;
  let minY = h;
  let maxY = -1;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      if (mask[row + x] !== 0) {
        if (x < minX) minX = x;
        if (x > maxX) maxX = x;
        if (y < minY) minY = y;
        if (y > maxY) maxY = y;
      }
    }
  }
  if (maxX < 0) return out;
  // Crop plus one pixel of background all round, so the crop edge is a boundary as well.
  const cw = maxX - minX + 1;
  const ch = maxY - minY + 1;
  const pw = cw + 2;
  const ph = ch + 2;
  // Squared distances are integers; Float32 holds them exactly up to 2^24 (a 4096 px reach),
  // beyond which the error is far below a pixel.
  const grid = new Float32Array(pw * ph);
  for (let y = 0; y < ph; y++) {
    for (let x = 0; x < pw; x++) {
      const inside = x > 0 && y > 0 && x <= cw && y <= ch && mask[(y - 1 + minY) * w + (x - 1 + minX)] !== 0;
      grid[y * pw + x] = inside ? Infinity : 0;
    }
  }
  const n = Math.max(pw, ph);
  const f = new Float64Array(n);
  const d = new Float64Array(n);
  const v = new Int32Array(n);
  const z = new Float64Array(n + 1);
  for (let x = 0; x < pw; x++) {
    for (let y = 0; y < ph; y++) f[y] = grid[y * pw + x];
    edt1d(f, ph, d, v, z);
    for (let y = 0; y < ph; y++) grid[y * pw + x] = d[y];
  }
  for (let y = 1; y <= ch; y++) {
    const row = y * pw;
    for (let x = 0; x < pw; x++) f[x] = grid[row + x];
    edt1d(f, pw, d, v, z);
    const o = (y - 1 + minY) * w + minX;
    for (let x = 1; x <= cw; x++) out[o + x - 1] = Math.sqrt(d[x]);
  }
  return out;
}

/**
 * 8-connected components of a binary mask. Returns one 0/1 mask per component, largest first
 * (ties by first pixel in raster order), so the order is deterministic.
 */
export function connectedComponents(mask: Uint8Array, w: number, h: number): Uint8Array[] {
  const labels = new Int32Array(w * h);
  const stack = new Int32Array(w * h);
  const sizes: number[] = [0];
  const firsts: number[] = [0];
  let next = 0;
  for (let start = 0; start < mask.length; start++) {
    if (mask[start] === 0 || labels[start] !== 0) continue;
    next++;
    let sp = 0;
    let count = 0;
    stack[sp++] = start;
    labels[start] = next;
    while (sp > 0) {
      const p = stack[--sp];
      count++;
      const px = p % w;
      const py = (p - px) / w;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = py + dy;
        if (ny < 0 || ny >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = px + dx;
          if (nx < 0 || nx >= w || (dx === 0 && dy === 0)) continue;
          const q = ny * w + nx;
          if (mask[q] !== 0 && labels[q] === 0) {
            labels[q] = next;
            stack[sp++] = q;
          }
        }
      }
    }
    sizes.push(count);
    firsts.push(start);
  }
  const order = Array.from({ length: next }, (_, i) => i + 1).sort((a, b) => sizes[b] - sizes[a] || firsts[a] - firsts[b]);
  const rank = new Int32Array(next + 1);
  order.forEach((label, i) => (rank[label] = i));
  const out = order.map(() => new Uint8Array(w * h));
  for (let i = 0; i < labels.length; i++) if (labels[i] !== 0) out[rank[labels[i]]][i] = 1;
  return out;
}

export type Blend = 'max' | 'add';

/**
 * Draws a tapered tube from (x0,y0) radius r0 to (x1,y1) radius r1 with the projected-cylinder
 * profile a*sqrt(1-(d/r)^2) (how a vessel or wire looks in a projection radiograph), anti-aliased
 * by evaluating the profile at the pixel centre with a half-pixel soft edge.
 */
export function drawTube(
  field: Float32Array,
  w: number,
  h: number,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  r0: number,
  r1: number,
  amplitude: number,
  blend: Blend = 'max',
): void {
  const rMax = Math.max(r0, r1) + 1;
  const minX = Math.max(0, Math.floor(Math.min(x0, x1) - rMax));
  const maxX = Math.min(w - 1, Math.ceil(Math.max(x0, x1) + rMax));
  const minY = Math.max(0, Math.floor(Math.min(y0, y1) - rMax));
  const maxY = Math.min(h - 1, Math.ceil(Math.max(y0, y1) + rMax));
  const dx = x1 - x0;
  const dy = y1 - y0;
  const len2 = dx * dx + dy * dy;
  for (let y = minY; y <= maxY; y++) {
    const py = y + 0.5;
    for (let x = minX; x <= maxX; x++) {
      const px = x + 0.5;
      let t = len2 > 0 ? ((px - x0) * dx + (py - y0) * dy) / len2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const cx = x0 + t * dx - px;
      const cy = y0 + t * dy - py;
      const d = Math.sqrt(cx * cx + cy * cy);
      const r = r0 + (r1 - r0) * t;
      // Widen sub-pixel tubes to half a pixel and scale amplitude down, conserving their density.
      const re = Math.max(r, 0.6);
      if (d >= re + 0.5) continue;
      const q = d / re;
      let v = q < 1 ? Math.sqrt(1 - q * q) : 0;
      if (d > re - 0.5) v = Math.max(v, (re + 0.5 - d) * 0.3);
      const val = amplitude * v * (r / re);
      const i = y * w + x;
      if (blend === 'max') {
        if (val > field[i]) field[i] = val;
      } else {
        field[i] += val;
      }
    }
  }
}
