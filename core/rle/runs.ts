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
  // An unaligned view is read byte by byte (a Uint32Array cannot start at an unaligned offset, even empty).
  const words = data.byteOffset % 4 === 0 ? new Uint32Array(data.buffer, data.byteOffset, n >>> 2) : new Uint32Array(0);
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

/** Masks made from their runs (maskFromRuns): the codecs read the runs instead of scanning pixels. */
const knownRuns = new WeakMap<Mask, Runs>();

/** The runs a mask was made from (maskFromRuns), if it was. */
export function knownRunsOf(mask: Mask): Runs | undefined {
  return knownRuns.get(mask);
}

/** A copy of `a` in a new array of `length` entries (the arrays here grow by doubling). */
function grown<T extends Int32Array | Float64Array>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(length);
  b.set(a);
  return b;
}

/**
 * Foreground intervals of a row-major mask as a producer finds them, pixel by pixel in row-major
 * order (`add` must be called with increasing (y, x)): interval k is row y[k], columns [x0[k], x1[k]).
 */
export class RowRuns {
  y = new Int32Array(64);
  x0 = new Int32Array(64);
  x1 = new Int32Array(64);
  count = 0;

  add(y: number, x: number): void {
    const k = this.count - 1;
    if (k >= 0 && this.y[k] === y && this.x1[k] === x) {
      this.x1[k] = x + 1;
      return;
    }
    if (this.count === this.y.length) {
      this.y = grown(this.y, this.count * 2);
      this.x0 = grown(this.x0, this.count * 2);
      this.x1 = grown(this.x1, this.count * 2);
    }
    this.y[this.count] = y;
    this.x0[this.count] = x;
    this.x1[this.count] = x + 1;
    this.count++;
  }
}

/**
 * Row intervals -> the column-major runs every RLE format is made from, in time proportional to the
 * foreground area (not the image): each column's vertical run opens on the row where the column
 * enters an interval and closes on the row where it leaves; the closed runs are then ordered by
 * column (a counting sort; within a column they close in row order), and a run reaching a column's
 * bottom merges with one starting the next column's top, as maskToRuns gives them.
 */
export function rowRunsToRuns(rr: RowRuns, rows: number, cols: number): Runs {
  const open = new Int32Array(cols).fill(-1);
  const seen = new Int32Array(cols).fill(-1);
  let cap = 64;
  let cx = new Int32Array(cap);
  let cy0 = new Int32Array(cap);
  let cy1 = new Int32Array(cap);
  let n = 0;
  const close = (x: number, y1: number) => {
    if (n === cap) {
      cap *= 2;
      cx = grown(cx, cap);
      cy0 = grown(cy0, cap);
      cy1 = grown(cy1, cap);
    }
    cx[n] = x;
    cy0[n] = open[x]!;
    cy1[n] = y1;
    n++;
    open[x] = -1;
  };
  // Intervals [prevFrom, prevTo) are those of row prevY, the last row that had any.
  let prevFrom = 0;
  let prevTo = 0;
  let prevY = -2;
  const closeAll = (from: number, to: number, y1: number) => {
    for (let i = from; i < to; i++) for (let x = rr.x0[i]!; x < rr.x1[i]!; x++) close(x, y1);
  };
  let k = 0;
  while (k < rr.count) {
    const y = rr.y[k]!;
    let curTo = k;
    while (curTo < rr.count && rr.y[curTo] === y) curTo++;
    if (prevY !== y - 1) {
      // Empty rows in between: every run open on row prevY ends below it.
      closeAll(prevFrom, prevTo, prevY + 1);
      prevFrom = prevTo = k;
    }
    for (let i = k; i < curTo; i++) {
      for (let x = rr.x0[i]!; x < rr.x1[i]!; x++) {
        if (open[x]! < 0) open[x] = y;
        seen[x] = y;
      }
    }
    for (let i = prevFrom; i < prevTo; i++) {
      for (let x = rr.x0[i]!; x < rr.x1[i]!; x++) if (seen[x] !== y) close(x, y);
    }
    prevFrom = k;
    prevTo = curTo;
    prevY = y;
    k = curTo;
  }
  closeAll(prevFrom, prevTo, prevY + 1);
  // Counting sort by column; within a column the runs closed in row order.
  const first = new Int32Array(cols + 1);
  for (let i = 0; i < n; i++) first[cx[i]! + 1]!++;
  for (let x = 0; x < cols; x++) first[x + 1]! += first[x]!;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[first[cx[i]!]!++] = i;
  const starts = new Float64Array(n);
  const lengths = new Float64Array(n);
  let count = 0;
  for (let j = 0; j < n; j++) {
    const i = order[j]!;
    const start = cx[i]! * rows + cy0[i]!;
    const length = cy1[i]! - cy0[i]!;
    if (count > 0 && starts[count - 1]! + lengths[count - 1]! === start) lengths[count - 1]! += length;
    else {
      starts[count] = start;
      lengths[count] = length;
      count++;
    }
  }
  return { starts: starts.subarray(0, count), lengths: lengths.subarray(0, count), count };
}

/**
 * A mask given as its runs (as maskToRuns makes them: column-major, sorted, maximal). Its row-major
 * `data` is painted on first read; encoding it in any RLE format reads the runs and never paints it.
 * So a mask can cross threads as its runs (a few KiB) rather than its pixels (1 MiB at 1024²).
 */
export function maskFromRuns(runs: Runs, rows: number, cols: number): Mask {
  let data: Uint8Array | undefined;
  const mask: Mask = {
    rows,
    cols,
    get data() {
      return (data ??= runsToMask(runs, rows, cols).data);
    },
  };
  knownRuns.set(mask, runs);
  return mask;
}

/**
 * Calls onRun(start, length) for each foreground run of a mask (any nonzero byte is foreground), in
 * column-major order, 0-based, maximal (a run reaching the bottom of a column and one starting the
 * next column are one run). No arrays are built beyond the bounding box's transpose (a reused buffer).
 */
export function forEachRun(mask: Mask, onRun: (start: number, length: number) => void): void {
  const known = knownRuns.get(mask);
  if (known) {
    for (let k = 0; k < known.count; k++) onRun(known.starts[k]!, known.lengths[k]!);
    return;
  }
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
  const known = knownRuns.get(mask);
  if (known) return known;
  let cap = 64;
  let starts = new Float64Array(cap);
  let lengths = new Float64Array(cap);
  let count = 0;
  forEachRun(mask, (start, length) => {
    if (count === cap) {
      cap *= 2;
      starts = grown(starts, cap);
      lengths = grown(lengths, cap);
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
