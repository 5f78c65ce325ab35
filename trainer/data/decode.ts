/**
 * Turns a SampleRef into an image and a mask at original resolution using only the shared core
 * decoders (the service decodes with the same ones).
 */
import { readFile } from 'node:fs/promises';
import { decodeImageFile, readMaskFile } from '../../core/image-file.ts';
import { createMask } from '../../core/mask.ts';
import { decodeSiimEntry } from '../../core/rle/siim-csv.ts';
import type { DecodedSample, SampleDecoder, SampleRef } from './types.ts';

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
  const mask = await readMaskFile(new Uint8Array(await readFile(ref.label.path)));
  return { image, mask };
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
