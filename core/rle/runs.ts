import { createMask, type Mask } from '../mask.ts';
import { RleError } from './errors.ts';

/**
 * The common intermediate of every codec: foreground runs in column-major pixel order
 * (index = col * rows + row), as 0-based start and length, sorted and non-touching when produced
 * by `maskToRuns`.
 */
export interface Runs {
  starts: Float64Array;
  lengths: Float64Array;
  count: number;
}

// Tile edge for the cache-friendly transposes (a 64x64 byte tile fits easily in L1).
const TILE = 64;

/** Column-major -> row-major (rows x cols). */
function toRowMajor(src: Uint8Array, rows: number, cols: number, dst: Uint8Array): void {
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        const o = r * cols;
        for (let c = c0; c < c1; c++) dst[o + c] = src[c * rows + r];
      }
    }
  }
}

// One reusable scratch buffer: the codecs are synchronous, so it is never shared concurrently.
let scratch = new Uint8Array(0);
function scratchOf(n: number): Uint8Array {
  if (scratch.length < n) scratch = new Uint8Array(Math.max(n, scratch.length * 2));
  return scratch.subarray(0, n);
}

/** Bounding box of the nonzero bytes, or null when there are none. Skips zero words fast. */
function foregroundBox(data: Uint8Array, rows: number, cols: number): { r0: number; r1: number; c0: number; c1: number } | null {
  const n = rows * cols;
  const aligned = data.byteOffset % 4 === 0;
  const words = new Uint32Array(data.buffer, data.byteOffset, aligned ? n >>> 2 : 0);
  const wordEnd = words.length * 4;
  let r0 = -1;
  let r1 = -1;
  let c0 = cols;
  let c1 = -1;
  let i = 0;
  while (i < n) {
    if ((i & 3) === 0 && i < wordEnd) {
      let w = i >>> 2;
      while (w < words.length && words[w] === 0) w++;
      i = w * 4;
      if (i >= n) break;
    }
    if (data[i] === 0) {
      i++;
      continue;
    }
    // First foreground byte of row r: extend the box with this row's extent, then go to the next row.
    const r = Math.floor(i / cols);
    const rowStart = r * cols;
    const rowEnd = rowStart + cols;
    if (r0 < 0) r0 = r;
    r1 = r;
    const first = i - rowStart;
    if (first < c0) c0 = first;
    let j = rowEnd - 1;
    while (data[j] === 0) j--;
    if (j - rowStart > c1) c1 = j - rowStart;
    i = rowEnd;
  }
  return r0 < 0 ? null : { r0, r1, c0, c1 };
}

/**
 * Calls onRun(start, length) for each foreground run of a mask (any nonzero byte is foreground), in
 * column-major order, 0-based, maximal (a run reaching the bottom of a column and one starting the
 * next column are one run). No arrays are built beyond the bounding box's transpose (a reused buffer).
 */
export function forEachRun(mask: Mask, onRun: (start: number, length: number) => void): void {
  const { rows, cols, data } = mask;
  const n = rows * cols;
  if (data.length !== n) throw new RangeError(`mask data has ${data.length} values, expected ${rows}x${cols}`);
  const box = n === 0 ? null : foregroundBox(data, rows, cols);
  if (!box) return;
  // Only the bounding box is transposed and scanned: a lesion covers a small part of the image.
  const bh = box.r1 - box.r0 + 1;
  const bw = box.c1 - box.c0 + 1;
  const t = scratchOf(bh * bw);
  for (let rr = 0; rr < bh; rr += TILE) {
    const rEnd = Math.min(bh, rr + TILE);
    for (let cc = 0; cc < bw; cc += TILE) {
      const cEnd = Math.min(bw, cc + TILE);
      for (let c = cc; c < cEnd; c++) {
        const o = c * bh;
        const src = box.r0 * cols + box.c0 + c;
        for (let r = rr; r < rEnd; r++) t[o + r] = data[src + r * cols];
      }
    }
  }
  // The run found last, reported once the next one is known not to continue it.
  let pendingStart = -1;
  let pendingLength = 0;
  for (let c = 0; c < bw; c++) {
    const base = c * bh;
    const globalBase = (box.c0 + c) * rows + box.r0;
    let r = 0;
    while (r < bh) {
      if (t[base + r] === 0) {
        r++;
        continue;
      }
      const s = r;
      while (r < bh && t[base + r] !== 0) r++;
      const gs = globalBase + s;
      if (pendingStart >= 0 && pendingStart + pendingLength === gs) {
        pendingLength += r - s;
        continue;
      }
      if (pendingStart >= 0) onRun(pendingStart, pendingLength);
      pendingStart = gs;
      pendingLength = r - s;
    }
  }
  if (pendingStart >= 0) onRun(pendingStart, pendingLength);
}

/** Foreground runs of a mask (any nonzero byte is foreground), column-major order. */
export function maskToRuns(mask: Mask): Runs {
  let cap = 64;
  let starts = new Float64Array(cap);
  let lengths = new Float64Array(cap);
  let count = 0;
  forEachRun(mask, (start, length) => {
    if (count === cap) {
      cap *= 2;
      const ns = new Float64Array(cap);
      ns.set(starts);
      starts = ns;
      const nl = new Float64Array(cap);
      nl.set(lengths);
      lengths = nl;
    }
    starts[count] = start;
    lengths[count] = length;
    count++;
  });
  return { starts, lengths, count };
}

/**
 * Paint runs (column-major, validated by the caller: in bounds, sorted, non-overlapping) into a
 * new row-major 0/1 mask.
 */
export function runsToMask(runs: Runs, rows: number, cols: number): Mask {
  const n = rows * cols;
  const out = new Uint8Array(n);
  if (rows === 1 || cols === 1) {
    for (let k = 0; k < runs.count; k++) out.fill(1, runs.starts[k], runs.starts[k] + runs.lengths[k]);
    return createMask(rows, cols, out);
  }
  let area = 0;
  for (let k = 0; k < runs.count; k++) area += runs.lengths[k];
  if (area * 4 < n) {
    // Sparse: write the foreground pixels directly (strided), cost proportional to area.
    for (let k = 0; k < runs.count; k++) {
      const s = runs.starts[k];
      let c = Math.floor(s / rows);
      let r = s - c * rows;
      for (let left = runs.lengths[k]; left > 0; left--) {
        out[r * cols + c] = 1;
        if (++r === rows) {
          r = 0;
          c++;
        }
      }
    }
  } else {
    // Dense: memset runs column-major, then one tiled transpose.
    const t = scratchOf(n);
    t.fill(0);
    for (let k = 0; k < runs.count; k++) t.fill(1, runs.starts[k], runs.starts[k] + runs.lengths[k]);
    toRowMajor(t, rows, cols, out);
  }
  return createMask(rows, cols, out);
}

/** Validate mask dimensions given alongside an encoding (they often come from a request). */
export function checkSize(rows: number, cols: number): void {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0) {
    throw new RleError(`invalid mask size ${rows}x${cols}: rows and cols must be non-negative integers`, { rows, cols });
  }
  if (rows * cols > 2 ** 31) {
    throw new RleError(`mask size ${rows}x${cols} is too large`, { rows, cols });
  }
}

const SPACE = 32;
const TAB = 9;
const LF = 10;
const CR = 13;
const DIGIT0 = 48;
const DIGIT9 = 57;

/**
 * Parse a whitespace-separated list of non-negative decimal integers. Strict: signs, decimals,
 * exponents and any other character are errors naming the offending token.
 */
export function parseIntegerList(s: string, format: string): Float64Array {
  const len = s.length;
  let out = new Float64Array(Math.min(1024, (len >>> 1) + 1));
  let count = 0;
  let i = 0;
  while (i < len) {
    const ch = s.charCodeAt(i);
    if (ch === SPACE || ch === TAB || ch === LF || ch === CR) {
      i++;
      continue;
    }
    const tokenStart = i;
    let v = 0;
    let ok = true;
    while (i < len) {
      const d = s.charCodeAt(i);
      if (d === SPACE || d === TAB || d === LF || d === CR) break;
      if (d < DIGIT0 || d > DIGIT9) ok = false;
      else v = v * 10 + (d - DIGIT0);
      i++;
    }
    if (!ok || v > Number.MAX_SAFE_INTEGER) {
      const token = s.slice(tokenStart, Math.min(i, tokenStart + 24));
      const why = /^-\d+$/.test(token) ? 'negative value' : 'not a non-negative integer';
      throw new RleError(`${format} RLE: value ${count + 1} "${token}" is ${why}`, { format, index: count });
    }
    if (count === out.length) {
      const grown = new Float64Array(out.length * 2);
      grown.set(out);
      out = grown;
    }
    out[count++] = v;
  }
  return out.subarray(0, count);
}
