/**
 * The 8-bit preview the service keeps for overlay.png, made in the inference worker from the image it
 * already decoded for the model (so no request decodes its DICOM twice).
 */
import type { LutSamples } from '../dicom/types.ts';
import type { Preview } from '../segmentation/records.ts';

export type { Preview };

export interface PreviewSource {
  rows: number;
  columns: number;
  /** Row-major luminance, larger = brighter (DecodedImage.pixels); not read when `samples` is there. */
  pixels: Float32Array;
  /** The same values as raw samples + table (DecodedImage.samples): read through the table, so a decoded image's float copy is never made for its preview. */
  samples?: LutSamples | undefined;
  min: number;
  max: number;
  window?: { center: number; width: number };
}

/** Largest preview side a request may ask for. */
export const MAX_PREVIEW_SIDE = 8192;

/**
 * Window the image to 8-bit (the file's own VOI window when it has one, else its min..max) and
 * box-filter it down so the longer side is at most `maxSide` (never enlarged). The result carries no
 * DICOM attributes.
 */
export function makePreview(img: PreviewSource, maxSide: number): Preview {
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
  if (width === img.columns && height === img.rows) {
    // Not shrunk: every box is one pixel, so this is the same arithmetic without the box loops; with
    // fewer table entries than pixels, done once per entry (the same byte per value) and looked up.
    if (img.samples && img.samples.lut.length <= out.length) {
      const { data, lut } = img.samples;
      const bytes = new Uint8Array(lut.length);
      for (let k = 0; k < lut.length; k++) {
        bytes[k] = toByte(lut[k]!, lo, span);
      }
      for (let i = 0; i < out.length; i++) out[i] = bytes[data[i]!]!;
      return { width, height, data: out };
    }
    const value = valueOf(img);
    for (let i = 0; i < out.length; i++) {
      out[i] = toByte(value(i), lo, span);
    }
    return { width, height, data: out };
  }
  // Box bounds per output column, computed once instead of per output pixel.
  const xs0 = new Int32Array(width);
  const xs1 = new Int32Array(width);
  for (let x = 0; x < width; x++) {
    xs0[x] = Math.floor((x * img.columns) / width);
    xs1[x] = Math.max(xs0[x]! + 1, Math.floor(((x + 1) * img.columns) / width));
  }
  // Per output row, each input row of the box is summed box by box into `boxSum` (one pass over
  // the row, in memory order), then each output divides its box's total.
  const boxSum = new Float64Array(width);
  for (let y = 0; y < height; y++) {
    const y0 = Math.floor((y * img.rows) / height);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * img.rows) / height));
    boxSum.fill(0);
    // Shrinking, the boxes of a row tile it (xs0[x + 1] === xs1[x]): one walk along the row, each
    // box's values summed in order from 0 (through the table for samples: the same float32 values).
    for (let yy = y0; yy < y1; yy++) {
      if (img.samples) sumRowThroughTable(img.samples, yy * img.columns, xs1, boxSum);
      else sumRow(img.pixels, yy * img.columns, xs1, boxSum);
    }
    const boxRows = y1 - y0;
    for (let x = 0; x < width; x++) {
      out[y * width + x] = toByte(boxSum[x]! / (boxRows * (xs1[x]! - xs0[x]!)), lo, span);
    }
  }
  return { width, height, data: out };
}

/** The window: lo..lo + span to 0..255, clamped and rounded (one rule for every path above). */
function toByte(value: number, lo: number, span: number): number {
  const v = ((value - lo) / span) * 255;
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

function valueOf(img: PreviewSource): (i: number) => number {
  if (!img.samples) {
    const px = img.pixels;
    return (i) => px[i]!;
  }
  const { data, lut } = img.samples;
  return (i) => lut[data[i]!]!;
}

function sumRow(px: Float32Array, o: number, xs1: Int32Array, boxSum: Float64Array): void {
  let xx = 0;
  for (let x = 0; x < xs1.length; x++) {
    const end = xs1[x]!;
    let sum = 0;
    for (; xx < end; xx++) sum += px[o + xx]!;
    boxSum[x]! += sum;
  }
}

function sumRowThroughTable(samples: LutSamples, o: number, xs1: Int32Array, boxSum: Float64Array): void {
  const { data, lut } = samples;
  let xx = 0;
  for (let x = 0; x < xs1.length; x++) {
    const end = xs1[x]!;
    let sum = 0;
    for (; xx < end; xx++) sum += lut[data[o + xx]!]!;
    boxSum[x]! += sum;
  }
}
