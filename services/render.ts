import sharp from 'sharp';
import type { Mask } from '../core/mask.ts';
import { labelColour } from '../core/palette.ts';
import type { Preview } from './store/types.ts';

/** 8-bit grey PNG at the image's own size: 255 where any of `masks` is set, else 0. */
export async function renderMaskPng(masks: Mask[], rows: number, cols: number): Promise<Buffer> {
  const px = new Uint8Array(rows * cols);
  for (const m of masks) for (let i = 0; i < px.length; i++) if (m.data[i]) px[i] = 255;
  return greyPng(px, rows, cols);
}

/** An 8-bit grey PNG of `px` (rows x cols); the encoding runs on libuv's pool, not the event loop. */
export function greyPng(px: Uint8Array, rows: number, cols: number): Promise<Buffer> {
  return sharp(px, { raw: { width: cols, height: rows, channels: 1 } }).toColourspace('b-w').png({ compressionLevel: 6 }).toBuffer();
}


/**
 * The preview in RGB with each mask tinted (alpha 0.4 inside, opaque on its boundary so thin
 * structures stay visible). Masks are sampled at the preview's pixel centres (nearest neighbour).
 * `colourIndices` keeps a label's colour when only some labels are drawn.
 */
export async function renderOverlayPng(preview: Preview, masks: Mask[], colourIndices?: number[]): Promise<Buffer> {
  const { width, height } = preview;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const g = preview.data[i]!;
    rgb[3 * i] = g;
    rgb[3 * i + 1] = g;
    rgb[3 * i + 2] = g;
  }
  masks.forEach((m, k) => {
    const tint = labelColour(colourIndices?.[k] ?? k);
    const inside = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      const sy = Math.min(m.rows - 1, Math.floor(((y + 0.5) * m.rows) / height));
      for (let x = 0; x < width; x++) {
        const sx = Math.min(m.cols - 1, Math.floor(((x + 0.5) * m.cols) / width));
        inside[y * width + x] = m.data[sy * m.cols + sx] ? 1 : 0;
      }
    }
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        if (!inside[i]) continue;
        const edge =
          x === 0 || y === 0 || x === width - 1 || y === height - 1 || !inside[i - 1] || !inside[i + 1] || !inside[i - width] || !inside[i + width];
        const a = edge ? 1 : 0.4;
        for (let c = 0; c < 3; c++) rgb[3 * i + c] = Math.round(rgb[3 * i + c]! * (1 - a) + tint[c]! * a);
      }
    }
  });
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 6 }).toBuffer();
}
