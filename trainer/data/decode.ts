/**
 * Turns a SampleRef into an image and a mask at original resolution using only the shared core
 * decoders (the service decodes with the same ones).
 */
import { readFile } from 'node:fs/promises';
import { decodeImageFile, readMaskFile } from '../../core/image-file.ts';
import { createMask } from '../../core/mask.ts';
import { decodeMask } from '../../core/rle/index.ts';
import { decodeSiimEntry } from '../../core/rle/siim-csv.ts';
import type { DecodedSample, LabelMap, SampleDecoder, SampleRef } from './types.ts';

// Loaded on first use, so a pairs-only run never loads the DICOM codecs.
let dicom: Promise<typeof import('../../core/dicom/decode.ts').decodeDicom> | undefined;
const dicomDecoder = () => (dicom ??= import('../../core/dicom/decode.ts').then((m) => m.decodeDicom));

export async function decodeSample(ref: SampleRef): Promise<DecodedSample> {
  const bytes = new Uint8Array(await readFile(ref.imagePath));
  const image = ref.format === 'dicom' ? await (await dicomDecoder())(bytes) : await decodeImageFile(bytes);
  if (ref.label.kind === 'rle') {
    const rles = ref.label.encodings;
    const mask = rles.length === 0 ? createMask(image.rows, image.columns) : decodeSiimEntry({ rles }, image.rows, image.columns, 'siim');
    return { image, mask };
  }
  if (ref.label.kind === 'labelmap') return withForeground(image, await readLabelMapFile(new Uint8Array(await readFile(ref.label.path))));
  if (ref.label.kind === 'class-rle') return withForeground(image, labelMapFromRows(ref.label.rows, image.rows, image.columns));
  const mask = await readMaskFile(new Uint8Array(await readFile(ref.label.path)));
  return { image, mask };
}

function withForeground(image: DecodedSample['image'], labels: LabelMap): DecodedSample {
  return { image, mask: createMask(labels.rows, labels.cols, Uint8Array.from(labels.data, (v) => (v !== 0 ? 1 : 0))), labels };
}

/** A label-map image through the shared image reader: grey pixel value = class index (0..255). */
export async function readLabelMapFile(bytes: Uint8Array): Promise<LabelMap> {
  const img = await decodeImageFile(bytes);
  if (img.samplesPerPixel !== 1) throw new Error('label-map mask must be a single-channel (grey) image whose pixel values are class indices');
  const data = new Uint8Array(img.pixels.length);
  for (let i = 0; i < data.length; i++) {
    const v = img.pixels[i]!;
    if (!(Number.isInteger(v) && v >= 0 && v <= 255)) throw new Error(`label-map pixel value ${v} is not a class index 0..255`);
    data[i] = v;
  }
  return { rows: img.rows, cols: img.columns, data };
}

/**
 * Kaggle multi-class rows -> class-index map: each class's mask is the union of its rows; rows are
 * painted in ascending ClassId order, so where classes overlap the higher index wins.
 */
export function labelMapFromRows(rows: readonly { classId: number; rle: string }[], height: number, width: number): LabelMap {
  const data = new Uint8Array(height * width);
  for (const r of rows.slice().sort((a, b) => a.classId - b.classId)) {
    const m = decodeMask(r.rle, 'kaggle', height, width).data;
    for (let i = 0; i < m.length; i++) if (m[i]) data[i] = r.classId;
  }
  return { rows: height, cols: width, data };
}

/** The real decoder, wrapped so callers (and tests) can count how often decoding happens. */
export function countingDecoder(inner: SampleDecoder = decodeSample): SampleDecoder & { calls: number } {
  const f = (async (ref: SampleRef) => {
    f.calls++;
    return inner(ref);
  }) as SampleDecoder & { calls: number };
  f.calls = 0;
  return f;
}
