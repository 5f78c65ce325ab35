/**
 * The pixel work behind the result reads, as pure functions: re-encoding stored RLEs, the union
 * of masks at full size (mask.png), masks sampled at the preview's size (overlay.png). Run inline for
 * small results and in mask-worker.ts for large ones (mask-offload.ts decides).
 */
import { decodeMask, encodeMask, type RleFormat } from '../../core/rle/index.ts';
import { DEFAULT_RLE_FORMAT } from '../contract/segmentation.ts';

/** A stored mask as the work needs it: its canonical RLE and size. */
export interface RleMask {
  counts: string;
  rows: number;
  cols: number;
}

export type MaskTask =
  | { op: 'reencode'; masks: RleMask[]; format: RleFormat }
  /** Each mask's pixels set to its value (default 255); later masks win where they overlap. */
  | { op: 'union'; masks: RleMask[]; rows: number; cols: number; values?: number[] }
  | { op: 'sample'; masks: RleMask[]; width: number; height: number };

export type MaskTaskResult = { op: 'reencode'; counts: Array<string | number[]> } | { op: 'union'; pixels: Uint8Array } | { op: 'sample'; masks: Uint8Array[] };

const decode = (m: RleMask) => decodeMask(m.counts, DEFAULT_RLE_FORMAT, m.rows, m.cols);

export function runMaskTask(t: MaskTask): MaskTaskResult {
  switch (t.op) {
    case 'reencode':
      return { op: 'reencode', counts: t.masks.map((m) => (t.format === DEFAULT_RLE_FORMAT ? m.counts : encodeMask(decode(m), t.format))) };
    case 'union': {
      const px = new Uint8Array(t.rows * t.cols);
      t.masks.forEach((rle, k) => {
        const m = decode(rle);
        const v = t.values?.[k] ?? 255;
        for (let i = 0; i < px.length; i++) if (m.data[i]) px[i] = v;
      });
      return { op: 'union', pixels: px };
    }
    case 'sample':
      // Nearest neighbour at the preview's pixel centres, as renderOverlayPng samples.
      return {
        op: 'sample',
        masks: t.masks.map((rle) => {
          const m = decode(rle);
          const out = new Uint8Array(t.width * t.height);
          for (let y = 0; y < t.height; y++) {
            const sy = Math.min(m.rows - 1, Math.floor(((y + 0.5) * m.rows) / t.height));
            for (let x = 0; x < t.width; x++) {
              const sx = Math.min(m.cols - 1, Math.floor(((x + 0.5) * m.cols) / t.width));
              out[y * t.width + x] = m.data[sy * m.cols + sx] ? 1 : 0;
            }
          }
          return out;
        }),
      };
  }
}

/** Pixels a task touches (decoded mask pixels): what decides inline vs. the worker. */
export const taskPixels = (t: MaskTask): number => t.masks.reduce((a, m) => a + m.rows * m.cols, 0);
