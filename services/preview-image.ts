import type { Preview } from './store/types.ts';

/** Longer side of the stored preview: small enough to keep thousands in memory/Redis (<= 64 KiB each). */
export const PREVIEW_MAX_SIDE = 256;

export interface PreviewSource {
  rows: number;
  columns: number;
  /** Row-major luminance, larger = brighter (DecodedImage.pixels). */
  pixels: Float32Array;
  min: number;
  max: number;
  window?: { center: number; width: number };
}

/**
 * Window the image to 8-bit (the file's own VOI window when it has one, else its min..max) and
 * box-filter it down so the longer side is at most `maxSide`. This is the only image data the
 * service keeps, and it carries no DICOM attributes.
 */
export function makePreview(img: PreviewSource, maxSide = PREVIEW_MAX_SIDE): Preview {
  const scale = Math.min(1, maxSide / Math.max(img.rows, img.columns));
  const width = Math.max(1, Math.round(img.columns * scale));
  const height = Math.max(1, Math.round(img.rows * scale));
  let lo: number;
  let hi: number;
  if (img.window && img.window.width > 0) {
    lo = img.window.center - img.window.width / 2;
    hi = img.window.center + img.window.width / 2;
  } else {
    lo = img.min;
    hi = img.max;
  }
  const span = hi > lo ? hi - lo : 1;
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const y0 = Math.floor((y * img.rows) / height);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * img.rows) / height));
    for (let x = 0; x < width; x++) {
      const x0 = Math.floor((x * img.columns) / width);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * img.columns) / width));
      let sum = 0;
      for (let yy = y0; yy < y1; yy++) {
        const row = yy * img.columns;
        for (let xx = x0; xx < x1; xx++) sum += img.pixels[row + xx]!;
      }
      const v = ((sum / ((y1 - y0) * (x1 - x0)) - lo) / span) * 255;
      out[y * width + x] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return { width, height, data: out };
}
