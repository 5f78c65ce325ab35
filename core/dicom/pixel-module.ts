/**
 * The Image Pixel module (PS3.3 C.7.6.3) plus the scalars that turn stored values into modality
 * values (Rescale Slope/Intercept) and the first VOI window, read and validated from the header
 * alone: everything here happens before any pixel memory is allocated.
 */
import type { DataSet } from 'dicom-parser';
import { DicomError } from './errors.ts';

export type Photometric = 'MONOCHROME1' | 'MONOCHROME2' | 'RGB' | 'YBR_FULL' | 'YBR_FULL_422' | 'YBR_ICT' | 'YBR_RCT';

export interface PixelModule {
  rows: number;
  columns: number;
  samplesPerPixel: 1 | 3;
  bitsAllocated: 8 | 16 | 32;
  bitsStored: number;
  highBit: number;
  pixelRepresentation: 0 | 1;
  photometricInterpretation: Photometric;
  planarConfiguration: 0 | 1;
  numberOfFrames: number;
  rescaleSlope: number;
  rescaleIntercept: number;
  /** First WindowCenter/WindowWidth pair as stored (before any MONOCHROME1 mapping). */
  window?: { center: number; width: number };
}

const SUPPORTED_PHOTOMETRIC = new Set<string>(['MONOCHROME1', 'MONOCHROME2', 'RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_ICT', 'YBR_RCT']);

/** Hard ceiling on frames independent of maxPixels, so an absurd NumberOfFrames is named as such. */
const MAX_FRAMES = 1 << 20;

function required(ds: DataSet, tag: string, name: string): number {
  const v = ds.uint16(tag);
  if (v === undefined) throw new DicomError('UNSUPPORTED_PIXEL_FORMAT', `${name} (${tag.slice(1, 5)},${tag.slice(5)}) is missing`);
  return v;
}

function unsupported(message: string, details: Record<string, unknown> = {}): DicomError {
  return new DicomError('UNSUPPORTED_PIXEL_FORMAT', message, details);
}

/** A DS value; undefined when absent or empty, NaN when present but unparseable. */
function ds(dsSet: DataSet, tag: string): number | undefined {
  const s = dsSet.string(tag, 0);
  if (s === undefined || s.trim() === '') return undefined;
  const n = Number(s.trim());
  return n;
}

export function readPixelModule(dataSet: DataSet, maxPixels: number): PixelModule {
  const rows = required(dataSet, 'x00280010', 'Rows');
  const columns = required(dataSet, 'x00280011', 'Columns');
  const bitsAllocated = required(dataSet, 'x00280100', 'BitsAllocated');
  const samplesPerPixel = dataSet.uint16('x00280002') ?? 1;
  const bitsStored = dataSet.uint16('x00280101') ?? bitsAllocated;
  const highBit = dataSet.uint16('x00280102') ?? bitsStored - 1;
  const pixelRepresentation = dataSet.uint16('x00280103') ?? 0;
  const photometric = (dataSet.string('x00280004') ?? (samplesPerPixel === 3 ? 'RGB' : 'MONOCHROME2')).trim().toUpperCase();
  const planarConfiguration = dataSet.uint16('x00280006') ?? 0;

  const framesText = dataSet.string('x00280008');
  const numberOfFrames = framesText === undefined || framesText.trim() === '' ? 1 : Number(framesText.trim());
  if (!Number.isInteger(numberOfFrames) || numberOfFrames < 1) {
    throw unsupported(`NumberOfFrames ${JSON.stringify(framesText)} is not a positive integer`);
  }

  if (rows === 0 || columns === 0) throw unsupported(`image has ${rows} rows and ${columns} columns`);
  // Size limits come before any format check that might let a huge object through to allocation.
  if (numberOfFrames > MAX_FRAMES) {
    throw new DicomError('TOO_LARGE', `NumberOfFrames ${numberOfFrames} exceeds the limit of ${MAX_FRAMES}`, { numberOfFrames });
  }
  const total = rows * columns * numberOfFrames * Math.max(1, samplesPerPixel);
  if (total > maxPixels) {
    throw new DicomError(
      'TOO_LARGE',
      `image is ${rows}x${columns}x${numberOfFrames} frames x${samplesPerPixel} samples = ${total} samples, over the limit of ${maxPixels}`,
      { rows, columns, numberOfFrames, samplesPerPixel, maxPixels },
    );
  }

  if (samplesPerPixel !== 1 && samplesPerPixel !== 3) throw unsupported(`SamplesPerPixel ${samplesPerPixel} is not supported (1 or 3)`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32) {
    throw unsupported(`BitsAllocated ${bitsAllocated} is not supported (8, 16 or 32)`, { bitsAllocated });
  }
  if (bitsStored < 1 || bitsStored > bitsAllocated) throw unsupported(`BitsStored ${bitsStored} does not fit BitsAllocated ${bitsAllocated}`);
  if (highBit < bitsStored - 1 || highBit >= bitsAllocated) {
    throw unsupported(`HighBit ${highBit} is inconsistent with BitsStored ${bitsStored} / BitsAllocated ${bitsAllocated}`);
  }
  if (pixelRepresentation !== 0 && pixelRepresentation !== 1) throw unsupported(`PixelRepresentation ${pixelRepresentation} is not 0 or 1`);
  if (!SUPPORTED_PHOTOMETRIC.has(photometric)) {
    throw unsupported(`PhotometricInterpretation ${photometric} is not supported`, { photometricInterpretation: photometric });
  }
  const colour = photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2';
  if (colour !== (samplesPerPixel === 3)) {
    throw unsupported(`PhotometricInterpretation ${photometric} does not fit SamplesPerPixel ${samplesPerPixel}`);
  }
  if (colour && pixelRepresentation === 1) throw unsupported(`signed colour pixel data is not supported`);
  if (planarConfiguration !== 0 && planarConfiguration !== 1) throw unsupported(`PlanarConfiguration ${planarConfiguration} is not 0 or 1`);

  let rescaleSlope = 1;
  let rescaleIntercept = 0;
  if (!colour) {
    const slope = ds(dataSet, 'x00281053');
    const intercept = ds(dataSet, 'x00281052');
    if (slope !== undefined) {
      if (!Number.isFinite(slope) || slope === 0) throw unsupported(`RescaleSlope ${dataSet.string('x00281053')} is not a usable number`);
      rescaleSlope = slope;
    }
    if (intercept !== undefined) {
      if (!Number.isFinite(intercept)) throw unsupported(`RescaleIntercept ${dataSet.string('x00281052')} is not a number`);
      rescaleIntercept = intercept;
    }
  }

  let window: PixelModule['window'];
  const center = ds(dataSet, 'x00281050');
  const width = ds(dataSet, 'x00281051');
  // A window is only meaningful with both values and a positive width; anything else is ignored, as viewers do.
  if (center !== undefined && width !== undefined && Number.isFinite(center) && Number.isFinite(width) && width > 0) {
    window = { center, width };
  }

  return {
    rows,
    columns,
    samplesPerPixel: samplesPerPixel as 1 | 3,
    bitsAllocated: bitsAllocated as 8 | 16 | 32,
    bitsStored,
    highBit,
    pixelRepresentation: pixelRepresentation as 0 | 1,
    photometricInterpretation: photometric as Photometric,
    planarConfiguration: planarConfiguration as 0 | 1,
    numberOfFrames,
    rescaleSlope,
    rescaleIntercept,
    window,
  };
}

/** Bytes of one native (uncompressed) frame; YBR_FULL_422 stores two samples per pixel. */
export function nativeFrameBytes(m: PixelModule): number {
  const bytesPerSample = m.bitsAllocated / 8;
  const samples = m.photometricInterpretation === 'YBR_FULL_422' ? 2 : m.samplesPerPixel;
  return m.rows * m.columns * samples * bytesPerSample;
}
