import type { Mask } from '../mask.ts';
import { RleError } from './errors.ts';
import { checkSize, forEachRun, maskToRuns, runsToMask, type Runs } from './runs.ts';

/**
 * COCO RLE as in pycocotools (common/maskApi.c).
 *
 * Uncompressed: `counts` over the column-major pixel sequence, alternating background and
 * foreground lengths, starting with background (so it starts with 0 when pixel 0 is set), and
 * summing to rows*cols. The last count is always written, as rleEncode does, so an empty mask is
 * [rows*cols] and a full one [0, rows*cols].
 *
 * Compressed (rleToString/rleFrString): each count, after replacing counts[i] by
 * counts[i] - counts[i-2] for i > 2, is written as little-endian groups of 5 bits; a group is one
 * character 48 + (bits | 0x20 if more groups follow); bit 0x10 of the last group is the sign.
 */
export function encodeCocoCounts(mask: Mask): number[] {
  return runsToCounts(maskToRuns(mask), mask.rows * mask.cols);
}

function runsToCounts(runs: Runs, n: number): number[] {
  const counts: number[] = [];
  let end = 0;
  for (let k = 0; k < runs.count; k++) {
    counts.push(runs.starts[k] - end, runs.lengths[k]);
    end = runs.starts[k] + runs.lengths[k];
  }
  if (end < n || counts.length === 0) counts.push(n - end);
  return counts;
}

export function cocoCountsToRuns(counts: ArrayLike<number>, rows: number, cols: number): Runs {
  checkSize(rows, cols);
  const n = rows * cols;
  const m = counts.length;
  const starts = new Float64Array(m >>> 1);
  const lengths = new Float64Array(m >>> 1);
  let runCount = 0;
  let pos = 0;
  for (let i = 0; i < m; i++) {
    const c = counts[i];
    if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 0) {
      throw new RleError(`coco RLE: count ${i + 1} (${String(c)}) is not a non-negative integer`, { format: 'coco', index: i });
    }
    if (i % 2 === 1 && c > 0) {
      // A zero-length background count between two runs (legal) makes them touch: merge.
      if (runCount > 0 && starts[runCount - 1] + lengths[runCount - 1] === pos) {
        lengths[runCount - 1] += c;
      } else {
        starts[runCount] = pos;
        lengths[runCount] = c;
        runCount++;
      }
    }
    pos += c;
    if (pos > n) {
      throw new RleError(`coco RLE: counts run past the last pixel at count ${i + 1} (sum ${pos} > ${rows}x${cols}=${n})`, { format: 'coco', index: i });
    }
  }
  if (pos !== n) throw new RleError(`coco RLE: counts sum to ${pos}, expected ${rows}x${cols}=${n}`, { format: 'coco' });
  return { starts, lengths, count: runCount };
}

export function decodeCocoCounts(counts: ArrayLike<number>, rows: number, cols: number): Mask {
  return runsToMask(cocoCountsToRuns(counts, rows, cols), rows, cols);
}

/** pycocotools rleToString. Arithmetic (not 32-bit bitwise ops) so counts above 2^31 stay exact. */
export function cocoCountsToString(counts: ArrayLike<number>): string {
  const chars: number[] = [];
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i] - (i > 2 ? counts[i - 2] : 0);
    let more = true;
    while (more) {
      let c = x - Math.floor(x / 32) * 32; // x & 0x1f, also for negative x
      x = Math.floor(x / 32); // arithmetic shift
      more = (c & 0x10) !== 0 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      chars.push(c + 48);
    }
  }
  let s = '';
  for (let i = 0; i < chars.length; i += 8192) s += String.fromCharCode(...chars.slice(i, i + 8192));
  return s;
}

// Ten 5-bit groups already exceed any count a mask can hold; more means garbage.
const MAX_GROUPS = 10;

/** pycocotools rleFrString, strict: only characters '0'..'o', no truncated value, no negative count. */
export function cocoStringToCounts(s: string): number[] {
  if (typeof s !== 'string') throw new RleError('coco-compressed RLE: counts must be a string', { format: 'coco-compressed' });
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    const valueStart = p;
    while (more) {
      if (p >= s.length) {
        throw new RleError(`coco-compressed RLE: truncated value at character ${valueStart + 1} (last group has the continuation bit)`, { format: 'coco-compressed', index: valueStart });
      }
      const code = s.charCodeAt(p);
      if (code < 48 || code > 111) {
        throw new RleError(`coco-compressed RLE: invalid character ${JSON.stringify(s[p])} at position ${p + 1}; expected '0'..'o'`, { format: 'coco-compressed', index: p });
      }
      const c = code - 48;
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (k > MAX_GROUPS) {
        throw new RleError(`coco-compressed RLE: value at character ${valueStart + 1} is too long`, { format: 'coco-compressed', index: valueStart });
      }
      if (!more && (c & 0x10) !== 0) x -= 2 ** (5 * k); // sign-extend
    }
    const m = counts.length;
    if (m > 2) x += counts[m - 2];
    if (x < 0) {
      throw new RleError(`coco-compressed RLE: count ${m + 1} decodes to ${x}; counts must be non-negative`, { format: 'coco-compressed', index: m });
    }
    counts.push(x);
  }
  return counts;
}

/**
 * cocoCountsToString(encodeCocoCounts(mask)), written straight from the mask's runs into one byte
 * buffer: no counts array, no character array. The counts are produced in the same sequence (gap,
 * length, ..., the trailing background count) and each is coded exactly as cocoCountsToString does.
 */
export function encodeCocoString(mask: Mask): string {
  const n = mask.rows * mask.cols;
  const w = new CocoWriter();
  let end = 0;
  forEachRun(mask, (start, length) => {
    w.push(start - end);
    w.push(length);
    end = start + length;
  });
  if (end < n || w.count === 0) w.push(n - end);
  return w.toString();
}

/** cocoCountsToString's coder, one count at a time, into a growing byte buffer. */
class CocoWriter {
  private buf = new Uint8Array(256);
  private len = 0;
  count = 0;
  private prev2 = 0;
  private prev1 = 0;

  push(value: number): void {
    const i = this.count++;
    let x = value - (i > 2 ? this.prev2 : 0);
    this.prev2 = this.prev1;
    this.prev1 = value;
    // At most ten 5-bit groups for any count a mask can hold (< 2^50).
    if (this.len + 11 > this.buf.length) {
      const grown = new Uint8Array(this.buf.length * 2);
      grown.set(this.buf);
      this.buf = grown;
    }
    const buf = this.buf;
    let len = this.len;
    if (x >= -0x80000000 && x <= 0x7fffffff) {
      // 32-bit: & 0x1f and >> 5 are exactly x mod 32 and floor(x / 32).
      let more = true;
      while (more) {
        let c = x & 0x1f;
        x >>= 5;
        more = (c & 0x10) !== 0 ? x !== -1 : x !== 0;
        if (more) c |= 0x20;
        buf[len++] = c + 48;
      }
    } else {
      let more = true;
      while (more) {
        let c = x - Math.floor(x / 32) * 32;
        x = Math.floor(x / 32);
        more = (c & 0x10) !== 0 ? x !== -1 : x !== 0;
        if (more) c |= 0x20;
        buf[len++] = c + 48;
      }
    }
    this.len = len;
  }

  toString(): string {
    return Buffer.from(this.buf.buffer, this.buf.byteOffset, this.len).toString('latin1');
  }
}

export function decodeCocoString(s: string, rows: number, cols: number): Mask {
  const counts = cocoStringToCounts(s);
  try {
    return decodeCocoCounts(counts, rows, cols);
  } catch (e) {
    if (e instanceof RleError) throw new RleError(e.message.replace(/^coco RLE/, 'coco-compressed RLE'), { ...e.details, format: 'coco-compressed' });
    throw e;
  }
}
