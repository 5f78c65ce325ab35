/**
 * Image/mask pairs layout of the Kaggle LGG brain MRI set:
 *   <out>/<case>/<case>_<n>.png        (8-bit grey, or 16-bit grey with 12-bit MR-like values)
 *   <out>/<case>/<case>_<n>_mask.png   (8-bit grey, 0 or 255)
 *   <out>/synth-info.json
 * Slices of a case are cut from one synthetic head, so the tumour is consistent through the
 * series; n is 1-based like the original.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { maskArea } from '../core/mask.ts';
import { renderBrainSlice, sampleBrainVolume } from './brain.ts';
import { deriveSeed, mulberry32 } from './rng.ts';

export interface PairsDatasetOptions {
  outDir: string;
  cases: number;
  /** Slices per case. Default 20. */
  slicesPerCase?: number;
  /** Image side in pixels. Default 256, like the LGG set. */
  size?: number;
  seed?: number;
  /** Bits per image sample. 16 writes values 0..4095 in a 16-bit PNG. Default 8. */
  bitDepth?: 8 | 16;
  /** Probability that a case has a tumour. Default 1. */
  tumourProbability?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface PairRecord {
  caseId: string;
  slice: number;
  /** Paths relative to outDir. */
  image: string;
  mask: string;
  tumourPixels: number;
}

export interface PairsDatasetResult {
  outDir: string;
  pairs: PairRecord[];
}

export function pairsCaseId(index: number): string {
  return `SYN_MR_${String(index + 1).padStart(4, '0')}`;
}

/** Maximum sample value of 16-bit output: MR scanners typically store 12 bits. */
export const PAIRS_16BIT_MAX = 4095;

export async function encodePng8(pixels: Uint8Array, size: number): Promise<Buffer> {
  return sharp(pixels, { raw: { width: size, height: size, channels: 1 } }).toColourspace('b-w').png().toBuffer();
}

export async function encodePng16(values: Uint16Array, size: number): Promise<Buffer> {
  return sharp(values, { raw: { width: size, height: size, channels: 1 } }).toColourspace('grey16').png().toBuffer();
}

export async function generatePairsDataset(opts: PairsDatasetOptions): Promise<PairsDatasetResult> {
  const slices = opts.slicesPerCase ?? 20;
  const size = opts.size ?? 256;
  const seed = opts.seed ?? 1;
  const bitDepth = opts.bitDepth ?? 8;
  if (!Number.isInteger(opts.cases) || opts.cases < 0 || opts.cases > 9999) throw new RangeError(`cases must be an integer in 0..9999, got ${opts.cases}`);
  if (!Number.isInteger(slices) || slices < 1 || slices > 1000) throw new RangeError(`slicesPerCase must be an integer in 1..1000, got ${slices}`);
  if (!Number.isInteger(size) || size < 32 || size > 8192) throw new RangeError(`size must be an integer in 32..8192, got ${size}`);
  if (bitDepth !== 8 && bitDepth !== 16) throw new RangeError(`bitDepth must be 8 or 16, got ${String(bitDepth)}`);
  const outDir = path.resolve(opts.outDir);
  await mkdir(outDir, { recursive: true });
  const pairs: PairRecord[] = [];
  const total = opts.cases * slices;
  let done = 0;
  for (let c = 0; c < opts.cases; c++) {
    const caseId = pairsCaseId(c);
    const vol = sampleBrainVolume(mulberry32(deriveSeed(seed, 10, c)), { tumourProbability: opts.tumourProbability });
    await mkdir(path.join(outDir, caseId), { recursive: true });
    for (let s = 1; s <= slices; s++) {
      // Slices span the head from skull base to vertex, cell-centred.
      const z = (s - 0.5) / slices;
      const slice = renderBrainSlice(vol, z, size);
      let imagePng: Buffer;
      if (bitDepth === 16) {
        const v16 = new Uint16Array(size * size);
        for (let i = 0; i < v16.length; i++) v16[i] = Math.round(slice.intensity[i] * PAIRS_16BIT_MAX);
        imagePng = await encodePng16(v16, size);
      } else {
        imagePng = await encodePng8(slice.pixels, size);
      }
      const mask255 = new Uint8Array(size * size);
      for (let i = 0; i < mask255.length; i++) mask255[i] = slice.mask.data[i] ? 255 : 0;
      const image = path.join(caseId, `${caseId}_${s}.png`);
      const mask = path.join(caseId, `${caseId}_${s}_mask.png`);
      await writeFile(path.join(outDir, image), imagePng);
      await writeFile(path.join(outDir, mask), await encodePng8(mask255, size));
      pairs.push({ caseId, slice: s, image, mask, tumourPixels: maskArea(slice.mask) });
      done++;
      opts.onProgress?.(done, total);
    }
  }
  const positives = pairs.filter((p) => p.tumourPixels > 0).length;
  await writeFile(
    path.join(outDir, 'synth-info.json'),
    JSON.stringify({ generator: 'synth/pairs', layout: 'pairs', seed, size, bitDepth, cases: opts.cases, slicesPerCase: slices, slicesWithTumour: positives, slicesWithoutTumour: total - positives }, null, 2) + '\n',
  );
  return { outDir, pairs };
}
