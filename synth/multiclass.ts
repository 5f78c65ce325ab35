/**
 * Multi-class chest layouts: the chest phantom's structures as classes
 *   0 background, 1 lung, 2 heart, 3 pneumothorax (the SIIM lesion; it lies inside a lung and
 *   takes precedence over it), the class list written to <out>/classes.json.
 *
 * `labelmap` layout:
 *   <out>/images/<stem>.dcm          (or .png with imageFormat 'png': 8-bit grey)
 *   <out>/masks/<stem>_mask.png      8-bit grey, pixel value = class index
 *   <out>/classes.json               ["background","lung","heart","pneumothorax"]
 *   <out>/synth-info.json
 * stem = SYN_CXR_00001, SYN_CXR_00002, ... (1-based).
 *
 * `csv` layout (the Kaggle multi-class convention of Severstal / Understanding Clouds, beside a
 * DICOM tree as in SIIM):
 *   <out>/train_images/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm
 *   <out>/train.csv                  header ImageId,ClassId,EncodedPixels
 *   <out>/classes.json, <out>/synth-info.json
 * ImageId = SOP Instance UID = file stem; ClassId = index in classes.json (1..3; background has
 * no rows); EncodedPixels = Kaggle RLE (column-major, 1-based, absolute "start length" pairs,
 * core/rle 'kaggle'). With the quirks real files have: a class present in an image is written as
 * one row per 8-connected component (so every image has several rows for `lung`: the mask of a
 * class is the union of its rows); a class absent from an image has, in turn over the dataset, no
 * row, a row with empty EncodedPixels, or a row with `-1`. Rows are grouped by image (in dataset
 * order) and ordered by ClassId within an image.
 *
 * Image i of a seed is the same picture in both layouts (only its name differs).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TS } from '../core/dicom/transfer-syntax.ts';
import { createMask } from '../core/mask.ts';
import { encodeMask } from '../core/rle/index.ts';
import { chestPhantom, type ChestPhantom, type ChestPhantomOptions } from './chest.ts';
import { encodeGrayDicom, type GrayDicomMeta } from './dicom-encode.ts';
import { connectedComponents } from './field.ts';
import { encodePng8 } from './pairs.ts';
import { chestIdentity } from './siim.ts';
import { deriveSeed, mulberry32 } from './rng.ts';

/** Class names in index order; index 0 is the background. */
export const MULTICLASS_CLASSES = ['background', 'lung', 'heart', 'pneumothorax'] as const;
export const MULTICLASS_CSV_HEADER = 'ImageId,ClassId,EncodedPixels';
export type MulticlassLayout = 'labelmap' | 'csv';
export const MULTICLASS_LAYOUTS: readonly MulticlassLayout[] = ['labelmap', 'csv'];
/** How a class absent from an image appears in train.csv (cycled through over the dataset). */
export type MissingClassStyle = 'no-row' | 'empty' | '-1';
export const MISSING_CLASS_STYLES: readonly MissingClassStyle[] = ['no-row', 'empty', '-1'];

export interface MulticlassDatasetOptions extends Pick<ChestPhantomOptions, 'negativeFraction' | 'secondLesionProbability' | 'minLesionFraction' | 'maxLesionFraction'> {
  outDir: string;
  layout: MulticlassLayout;
  count: number;
  /** Image side in pixels. Default 256. */
  size?: number;
  seed?: number;
  /** labelmap layout only: DICOM (default) or 8-bit PNG images. */
  imageFormat?: 'dcm' | 'png';
  /** Transfer syntax of the DICOM files. Default JPEG Baseline, as in the SIIM layout. */
  transferSyntaxUid?: string;
  jpegQuality?: number;
  modality?: 'CR' | 'DX';
  onProgress?: (done: number, total: number) => void;
}

export interface MulticlassImageRecord {
  index: number;
  /** labelmap: the stem (SYN_CXR_00001); csv: the ImageId (SOP Instance UID, also the stem). */
  imageId: string;
  /** Paths relative to outDir. */
  image: string;
  /** labelmap layout only. */
  mask?: string;
  /** Pixels per class, in MULTICLASS_CLASSES order. */
  classPixels: number[];
  /** csv layout only: the rows written for this image (without the header). */
  csvRows?: string[];
}

export interface MulticlassDatasetResult {
  outDir: string;
  layout: MulticlassLayout;
  classes: readonly string[];
  classesPath: string;
  /** csv layout only. */
  csvPath?: string;
  images: MulticlassImageRecord[];
}

export interface MulticlassImage {
  phantom: ChestPhantom;
  /** Row-major class indices, size x size. */
  labels: Uint8Array;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  meta: GrayDicomMeta;
}

const STREAM_IMAGE = 20;
const STREAM_UID = 21;

/** Row-major class indices of a phantom: lungs 1, heart 2, pneumothorax 3 (over lung), else 0. */
export function chestLabelMap(p: ChestPhantom): Uint8Array {
  const out = new Uint8Array(p.size * p.size);
  for (let i = 0; i < out.length; i++) {
    if (p.mask.data[i]) out[i] = 3;
    else if (p.heart.data[i]) out[i] = 2;
    else if (p.lungs.data[i]) out[i] = 1;
  }
  return out;
}

export function multiclassStem(index: number): string {
  return `SYN_CXR_${String(index + 1).padStart(5, '0')}`;
}

/** Image `index` of a dataset, fully determined by (seed, index, size): phantom, label map, UIDs, DICOM attributes. */
export function multiclassImage(seed: number, index: number, size: number, opts: Omit<MulticlassDatasetOptions, 'outDir' | 'count' | 'layout'> = {}): MulticlassImage {
  const phantom = chestPhantom(mulberry32(deriveSeed(seed, STREAM_IMAGE, index)), size, {
    negativeFraction: opts.negativeFraction,
    secondLesionProbability: opts.secondLesionProbability,
    minLesionFraction: opts.minLesionFraction,
    maxLesionFraction: opts.maxLesionFraction,
  });
  return { phantom, labels: chestLabelMap(phantom), ...chestIdentity(mulberry32(deriveSeed(seed, STREAM_UID, index)), index, opts.modality ?? 'CR') };
}

/**
 * The train.csv rows of one image (no header): for each class 1..C-1, one row per 8-connected
 * component of its pixels, or, when absent, what `missingStyle` says (called once per absent class).
 */
export function multiclassCsvRows(imageId: string, labels: Uint8Array, size: number, classCount: number, missingStyle: () => MissingClassStyle): string[] {
  const rows: string[] = [];
  for (let c = 1; c < classCount; c++) {
    const bin = new Uint8Array(labels.length);
    let any = false;
    for (let i = 0; i < labels.length; i++) {
      if (labels[i] === c) {
        bin[i] = 1;
        any = true;
      }
    }
    if (!any) {
      const style = missingStyle();
      if (style === 'empty') rows.push(`${imageId},${c},`);
      else if (style === '-1') rows.push(`${imageId},${c},-1`);
      continue;
    }
    for (const comp of connectedComponents(bin, size, size)) rows.push(`${imageId},${c},${encodeMask(createMask(size, size, comp), 'kaggle')}`);
  }
  return rows;
}

function validate(opts: MulticlassDatasetOptions): void {
  if (!MULTICLASS_LAYOUTS.includes(opts.layout)) throw new RangeError(`layout must be one of ${MULTICLASS_LAYOUTS.join(', ')}, got ${String(opts.layout)}`);
  if (!Number.isInteger(opts.count) || opts.count < 0 || opts.count > 99999) throw new RangeError(`count must be an integer in 0..99999, got ${opts.count}`);
  const size = opts.size ?? 256;
  if (!Number.isInteger(size) || size < 32 || size > 8192) throw new RangeError(`size must be an integer in 32..8192, got ${size}`);
  if (opts.imageFormat !== undefined && opts.imageFormat !== 'dcm' && opts.imageFormat !== 'png') throw new RangeError(`imageFormat must be dcm or png, got ${String(opts.imageFormat)}`);
  if (opts.imageFormat === 'png' && opts.layout === 'csv') throw new RangeError('the csv layout is a DICOM tree; imageFormat png is for the labelmap layout');
  const nf = opts.negativeFraction;
  if (nf !== undefined && !(nf >= 0 && nf <= 1)) throw new RangeError(`negativeFraction must be in 0..1, got ${nf}`);
}

async function writeAt(outDir: string, rel: string, bytes: Uint8Array): Promise<void> {
  const full = path.join(outDir, rel);
  await mkdir(path.dirname(full), { recursive: true });
  await writeFile(full, bytes);
}

export async function generateMulticlassDataset(opts: MulticlassDatasetOptions): Promise<MulticlassDatasetResult> {
  validate(opts);
  const seed = opts.seed ?? 1;
  const size = opts.size ?? 256;
  const ts = opts.transferSyntaxUid ?? TS.JPEGBaseline;
  const imageFormat = opts.imageFormat ?? 'dcm';
  const outDir = path.resolve(opts.outDir);
  await mkdir(outDir, { recursive: true });
  const classes = [...MULTICLASS_CLASSES];
  const images: MulticlassImageRecord[] = [];
  const csv: string[] = [MULTICLASS_CSV_HEADER];
  let missing = 0;
  const nextMissing = (): MissingClassStyle => MISSING_CLASS_STYLES[missing++ % MISSING_CLASS_STYLES.length]!;
  const styleCounts: Record<MissingClassStyle, number> = { 'no-row': 0, empty: 0, '-1': 0 };
  for (let index = 0; index < opts.count; index++) {
    const img = multiclassImage(seed, index, size, opts);
    const classPixels = classes.map(() => 0);
    for (let i = 0; i < img.labels.length; i++) classPixels[img.labels[i]!]!++;
    const pixels = img.phantom.pixels;
    if (opts.layout === 'labelmap') {
      const stem = multiclassStem(index);
      const image = path.join('images', `${stem}.${imageFormat}`);
      const mask = path.join('masks', `${stem}_mask.png`);
      const bytes = imageFormat === 'png' ? await encodePng8(pixels, size) : await encodeGrayDicom(pixels, size, size, img.meta, { transferSyntaxUid: ts, jpegQuality: opts.jpegQuality });
      await writeAt(outDir, image, bytes);
      await writeAt(outDir, mask, await encodePng8(img.labels, size));
      images.push({ index, imageId: stem, image, mask, classPixels });
    } else {
      const image = path.join('train_images', img.studyInstanceUid, img.seriesInstanceUid, `${img.sopInstanceUid}.dcm`);
      await writeAt(outDir, image, await encodeGrayDicom(pixels, size, size, img.meta, { transferSyntaxUid: ts, jpegQuality: opts.jpegQuality }));
      const rows = multiclassCsvRows(img.sopInstanceUid, img.labels, size, classes.length, () => {
        const s = nextMissing();
        styleCounts[s]++;
        return s;
      });
      csv.push(...rows);
      images.push({ index, imageId: img.sopInstanceUid, image, classPixels, csvRows: rows });
    }
    opts.onProgress?.(index + 1, opts.count);
  }
  const classesPath = path.join(outDir, 'classes.json');
  await writeFile(classesPath, JSON.stringify(classes) + '\n');
  let csvPath: string | undefined;
  if (opts.layout === 'csv') {
    csvPath = path.join(outDir, 'train.csv');
    await writeFile(csvPath, csv.join('\n') + '\n');
  }
  const imagesWith = classes.map((_, c) => images.filter((r) => r.classPixels[c]! > 0).length);
  await writeFile(
    path.join(outDir, 'synth-info.json'),
    JSON.stringify(
      {
        generator: 'synth/multiclass',
        layout: opts.layout,
        seed,
        size,
        count: opts.count,
        imageFormat: opts.layout === 'labelmap' ? imageFormat : 'dcm',
        transferSyntaxUid: opts.layout === 'labelmap' && imageFormat === 'png' ? undefined : ts,
        classes,
        background: 0,
        imagesWithClass: Object.fromEntries(classes.map((c, k) => [c, imagesWith[k]])),
        ...(opts.layout === 'csv' ? { missingClassRows: styleCounts } : {}),
        negativeFraction: opts.negativeFraction ?? 0.4,
      },
      null,
      2,
    ) + '\n',
  );
  return { outDir, layout: opts.layout, classes, classesPath, csvPath, images };
}
