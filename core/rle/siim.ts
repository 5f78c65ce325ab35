import type { Mask } from '../mask.ts';
import { RleError } from './errors.ts';
import { checkSize, maskToRuns, parseIntegerList, runsToMask, type Runs } from './runs.ts';

/**
 * SIIM-ACR Pneumothorax relative RLE (the competition's mask_functions.py): column-major,
 * pairs of "gap length" where the first gap is the 0-based start of the first run and every
 * later gap counts the background pixels since the END of the previous run.
 *
 * Unlike the original mask2rle this treats any nonzero pixel as foreground (not only 255) and
 * keeps a run that reaches the last pixel. An empty mask encodes to "" (CSV files hold -1).
 */
export function encodeSiim(mask: Mask): string {
  const runs = maskToRuns(mask);
  const parts = new Array<string>(runs.count * 2);
  let end = 0;
  for (let k = 0; k < runs.count; k++) {
    parts[2 * k] = String(runs.starts[k] - end);
    parts[2 * k + 1] = String(runs.lengths[k]);
    end = runs.starts[k] + runs.lengths[k];
  }
  return parts.join(' ');
}

export function siimToRuns(rle: string, rows: number, cols: number): Runs {
  checkSize(rows, cols);
  if (rle.trim() === '-1') return { starts: new Float64Array(0), lengths: new Float64Array(0), count: 0 };
  const v = parseIntegerList(rle, 'siim');
  if (v.length % 2 !== 0) throw new RleError(`siim RLE: odd number of values (${v.length}); expected gap/length pairs`, { format: 'siim' });
  const n = rows * cols;
  const count = v.length / 2;
  const starts = new Float64Array(count);
  const lengths = new Float64Array(count);
  // Gaps are non-negative by parsing, so runs can only touch, never overlap.
  let pos = 0;
  for (let k = 0; k < count; k++) {
    const gap = v[2 * k];
    const len = v[2 * k + 1];
    if (len < 1) throw new RleError(`siim RLE: run ${k + 1} has length ${len}; lengths must be positive`, { format: 'siim', run: k });
    const s = pos + gap;
    if (s + len > n) {
      throw new RleError(`siim RLE: run ${k + 1} (0-based start ${s}, length ${len}) ends past the last pixel of a ${rows}x${cols} mask (${n} pixels)`, { format: 'siim', run: k });
    }
    starts[k] = s;
    lengths[k] = len;
    pos = s + len;
  }
  return { starts, lengths, count };
}

export function decodeSiim(rle: string, rows: number, cols: number): Mask {
  return runsToMask(siimToRuns(rle, rows, cols), rows, cols);
}
