import type { Mask } from '../mask.ts';
import { RleError } from './errors.ts';
import { checkSize, maskToRuns, parseIntegerList, runsToMask, type Runs } from './runs.ts';

/**
 * Kaggle "EncodedPixels": column-major pixel numbering starting at 1, space-separated absolute
 * "start length" pairs. An empty mask encodes to "" (CSV writers print -1; the decoder accepts
 * both "" and "-1").
 */
export function encodeKaggle(mask: Mask): string {
  const runs = maskToRuns(mask);
  const parts = new Array<string>(runs.count * 2);
  for (let k = 0; k < runs.count; k++) {
    parts[2 * k] = String(runs.starts[k] + 1);
    parts[2 * k + 1] = String(runs.lengths[k]);
  }
  return parts.join(' ');
}

/** Parse and validate into 0-based runs; runs may touch but not overlap or go backwards. */
export function kaggleToRuns(rle: string, rows: number, cols: number): Runs {
  checkSize(rows, cols);
  if (rle.trim() === '-1') return { starts: new Float64Array(0), lengths: new Float64Array(0), count: 0 };
  const v = parseIntegerList(rle, 'kaggle');
  if (v.length % 2 !== 0) throw new RleError(`kaggle RLE: odd number of values (${v.length}); expected start/length pairs`, { format: 'kaggle' });
  const n = rows * cols;
  const count = v.length / 2;
  const starts = new Float64Array(count);
  const lengths = new Float64Array(count);
  let end = 0; // exclusive end of the previous run, 0-based
  for (let k = 0; k < count; k++) {
    const start1 = v[2 * k];
    const len = v[2 * k + 1];
    if (start1 < 1) throw new RleError(`kaggle RLE: run ${k + 1} starts at ${start1}; pixel numbers start at 1`, { format: 'kaggle', run: k });
    if (len < 1) throw new RleError(`kaggle RLE: run ${k + 1} has length ${len}; lengths must be positive`, { format: 'kaggle', run: k });
    const s = start1 - 1;
    if (s < end) {
      throw new RleError(`kaggle RLE: run ${k + 1} (start ${start1}) overlaps or precedes the previous run ending at ${end}; runs must be sorted and disjoint`, { format: 'kaggle', run: k });
    }
    if (s + len > n) {
      throw new RleError(`kaggle RLE: run ${k + 1} (start ${start1}, length ${len}) ends past the last pixel ${n} of a ${rows}x${cols} mask`, { format: 'kaggle', run: k });
    }
    starts[k] = s;
    lengths[k] = len;
    end = s + len;
  }
  return { starts, lengths, count };
}

export function decodeKaggle(rle: string, rows: number, cols: number): Mask {
  return runsToMask(kaggleToRuns(rle, rows, cols), rows, cols);
}
