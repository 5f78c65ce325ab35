/**
 * SIIM-ACR pneumothorax layout:
 *   <out>/dicom-images-train/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm
 *   <out>/dicom-images-test/...            (optional, no masks)
 *   <out>/train-rle.csv                    ("ImageId, EncodedPixels"; " -1" for no lesion; one row
 *                                           per separate lesion component, rows of an image adjacent)
 *   <out>/syntaxes/<TransferSyntaxUID>/... (optional: the same train images in other encodings)
 *   <out>/synth-info.json                  (what was generated, for reproducibility)
 * ImageId is the SOP Instance UID, which is also the file stem, as in the real set.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { newUid } from '../core/dicom/write.ts';
import { TS } from '../core/dicom/transfer-syntax.ts';
import { encodeMask } from '../core/rle/index.ts';
import { createMask, type Mask } from '../core/mask.ts';
import { chestPhantom, type ChestPhantom, type ChestPhantomOptions } from './chest.ts';
import { encodeGrayDicom, type GrayDicomMeta } from './dicom-encode.ts';
import { SYNTHETIC_PATIENT_NAME, syntheticPatientId } from './identity.ts';
import { chance, deriveSeed, mulberry32 } from './rng.ts';
import { encodeVariant } from './variants.ts';

export const SIIM_CSV_HEADER = 'ImageId, EncodedPixels';

export interface SiimDatasetOptions extends Pick<ChestPhantomOptions, 'negativeFraction' | 'secondLesionProbability' | 'minLesionFraction' | 'maxLesionFraction'> {
  outDir: string;
  /** Number of training images (with masks in train-rle.csv). */
  count: number;
  /** Number of images in dicom-images-test (no masks). Default 0. */
  testCount?: number;
  /** Image side in pixels. Default 1024, like the real set. */
  size?: number;
  seed?: number;
  /** Transfer syntax of the main layout. Default JPEG Baseline (1.2.840.10008.1.2.4.50). */
  transferSyntaxUid?: string;
  /** Extra encodings of every training image, written under <out>/syntaxes/<uid>/. */
  syntaxes?: string[];
  jpegQuality?: number;
  modality?: 'CR' | 'DX';
  /** Called after each image is written. */
  onProgress?: (done: number, total: number) => void;
}

export interface SiimImageRecord {
  imageId: string;
  split: 'train' | 'test';
  /** Path relative to outDir. */
  file: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  /** Number of separate lesion components (rows in train-rle.csv; 0 means one " -1" row). */
  components: number;
  /** Variant files (relative paths) by transfer syntax UID. */
  variants: Record<string, string>;
}

export interface SiimDatasetResult {
  outDir: string;
  csvPath: string;
  images: SiimImageRecord[];
}

export interface SiimImage {
  phantom: ChestPhantom;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  meta: GrayDicomMeta;
}

/** Stream ids keep train, test and UID randomness independent of each other. */
const STREAM_TRAIN = 1;
const STREAM_TEST = 2;
const STREAM_UID = 3;

/**
 * The image `index` of a split, fully determined by (seed, split, index): its phantom, its UIDs
 * and its DICOM attributes. Exposed so a test can rebuild any dataset image in memory.
 */
export function siimImage(seed: number, split: 'train' | 'test', index: number, size: number, opts: Omit<SiimDatasetOptions, 'outDir' | 'count'> = {}): SiimImage {
  const stream = split === 'train' ? STREAM_TRAIN : STREAM_TEST;
  const phantom = chestPhantom(mulberry32(deriveSeed(seed, stream, index)), size, {
    negativeFraction: opts.negativeFraction,
    secondLesionProbability: opts.secondLesionProbability,
    minLesionFraction: opts.minLesionFraction,
    maxLesionFraction: opts.maxLesionFraction,
  });
  const patientNumber = (split === 'train' ? 0 : 500000) + index;
  return { phantom, ...chestIdentity(mulberry32(deriveSeed(seed, STREAM_UID, stream, index)), patientNumber, opts.modality ?? 'CR') };
}

/** A synthetic chest radiograph's UIDs and (fake) patient attributes, drawn from `uidRng` in a fixed order. */
export function chestIdentity(uidRng: () => number, patientNumber: number, modality: string) {
  const studyInstanceUid = newUid(uidRng);
  const seriesInstanceUid = newUid(uidRng);
  const sopInstanceUid = newUid(uidRng);
  const meta: GrayDicomMeta = {
    sopInstanceUid,
    studyInstanceUid,
    seriesInstanceUid,
    modality,
    patientName: SYNTHETIC_PATIENT_NAME,
    patientId: syntheticPatientId(patientNumber % 1000000),
    bodyPartExamined: 'CHEST',
    viewPosition: chance(uidRng, 0.7) ? 'PA' : 'AP',
  };
  return { sopInstanceUid, studyInstanceUid, seriesInstanceUid, meta };
}

/** The CSV rows of one image: one per lesion component, or a single " -1". */
export function siimCsvRows(imageId: string, components: readonly Mask[]): string[] {
  if (components.length === 0) return [`${imageId}, -1`];
  return components.map((c) => {
    const rle = encodeMask(c, 'siim');
    if (rle === '') throw new RangeError(`image ${imageId}: empty lesion component`);
    return `${imageId}, ${rle}`;
  });
}

function validate(opts: SiimDatasetOptions): void {
  const intIn = (name: string, v: number, lo: number, hi: number) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${name} must be an integer in ${lo}..${hi}, got ${v}`);
  };
  intIn('count', opts.count, 0, 500000);
  intIn('testCount', opts.testCount ?? 0, 0, 499999);
  intIn('size', opts.size ?? 1024, 32, 8192);
  const nf = opts.negativeFraction;
  if (nf !== undefined && !(nf >= 0 && nf <= 1)) throw new RangeError(`negativeFraction must be in 0..1, got ${nf}`);
}

/** Bounded number of encodes/writes in flight, so sharp's threads overlap phantom generation. */
class Pipeline {
  private readonly pending = new Set<Promise<void>>();
  constructor(private readonly limit: number) {}
  async add(task: () => Promise<void>): Promise<void> {
    while (this.pending.size >= this.limit) await Promise.race(this.pending);
    const p: Promise<void> = task().finally(() => this.pending.delete(p));
    this.pending.add(p);
  }
  async drain(): Promise<void> {
    await Promise.all(this.pending);
  }
}

export async function generateSiimDataset(opts: SiimDatasetOptions): Promise<SiimDatasetResult> {
  validate(opts);
  const seed = opts.seed ?? 1;
  const size = opts.size ?? 1024;
  const ts = opts.transferSyntaxUid ?? TS.JPEGBaseline;
  const syntaxes = [...new Set(opts.syntaxes ?? [])];
  const outDir = path.resolve(opts.outDir);
  const total = opts.count + (opts.testCount ?? 0);
  await mkdir(outDir, { recursive: true });

  const images: SiimImageRecord[] = [];
  const csv: string[] = [SIIM_CSV_HEADER];
  const pipeline = new Pipeline(4);
  let done = 0;
  let failure: unknown;
  for (const split of ['train', 'test'] as const) {
    const n = split === 'train' ? opts.count : (opts.testCount ?? 0);
    const root = split === 'train' ? 'dicom-images-train' : 'dicom-images-test';
    for (let index = 0; index < n; index++) {
      if (failure) break;
      const img = siimImage(seed, split, index, size, opts);
      const rel = path.join(root, img.studyInstanceUid, img.seriesInstanceUid, `${img.sopInstanceUid}.dcm`);
      const record: SiimImageRecord = {
        imageId: img.sopInstanceUid,
        split,
        file: rel,
        studyInstanceUid: img.studyInstanceUid,
        seriesInstanceUid: img.seriesInstanceUid,
        components: img.phantom.components.length,
        variants: {},
      };
      images.push(record);
      if (split === 'train') csv.push(...siimCsvRows(img.sopInstanceUid, img.phantom.components));
      const pixels = img.phantom.pixels;
      const variantTargets = split === 'train' ? syntaxes : [];
      for (const v of variantTargets) record.variants[v] = path.join('syntaxes', v, img.studyInstanceUid, img.seriesInstanceUid, `${img.sopInstanceUid}.dcm`);
      await pipeline.add(async () => {
        try {
          const bytes = await encodeGrayDicom(pixels, size, size, img.meta, { transferSyntaxUid: ts, jpegQuality: opts.jpegQuality });
          await writeAt(outDir, rel, bytes);
          for (const v of variantTargets) {
            const vb = await encodeVariant(pixels, size, size, img.meta, v, opts.jpegQuality);
            await writeAt(outDir, record.variants[v]!, vb);
          }
          done++;
          opts.onProgress?.(done, total);
        } catch (e) {
          failure ??= e;
        }
      });
    }
  }
  await pipeline.drain();
  if (failure) throw failure;
  const csvPath = path.join(outDir, 'train-rle.csv');
  await writeFile(csvPath, csv.join('\n') + '\n');
  const positives = images.filter((r) => r.split === 'train' && r.components > 0).length;
  await writeFile(
    path.join(outDir, 'synth-info.json'),
    JSON.stringify(
      {
        generator: 'synth/siim',
        layout: 'siim',
        seed,
        size,
        transferSyntaxUid: ts,
        syntaxes,
        train: opts.count,
        test: opts.testCount ?? 0,
        trainPositives: positives,
        trainNegatives: opts.count - positives,
        negativeFraction: opts.negativeFraction ?? 0.4,
      },
      null,
      2,
    ) + '\n',
  );
  return { outDir, csvPath, images };
}

async function writeAt(outDir: string, rel: string, bytes: Uint8Array): Promise<void> {
  const full = path.join(outDir, rel);
  await mkdir(path.dirname(full), { recursive: true });
  await writeFile(full, bytes);
}

export interface ChestDicomOptions extends ChestPhantomOptions {
  size?: number;
  transferSyntaxUid?: string;
  jpegQuality?: number;
}

export interface ChestDicom {
  bytes: Uint8Array;
  pixels: Uint8Array;
  mask: Mask;
  components: Mask[];
  sopInstanceUid: string;
}

/** One chest DICOM and its truth mask in memory (for tests elsewhere). Default 256 px, JPEG Baseline. */
export async function chestDicom(seed: number, opts: ChestDicomOptions = {}): Promise<ChestDicom> {
  const size = opts.size ?? 256;
  const phantom = chestPhantom(mulberry32(deriveSeed(seed, STREAM_TRAIN, 0)), size, opts);
  const uidRng = mulberry32(deriveSeed(seed, STREAM_UID, 0));
  const sopInstanceUid = newUid(uidRng);
  const meta: GrayDicomMeta = {
    sopInstanceUid,
    studyInstanceUid: newUid(uidRng),
    seriesInstanceUid: newUid(uidRng),
    modality: 'CR',
    patientName: SYNTHETIC_PATIENT_NAME,
    patientId: syntheticPatientId(0),
    bodyPartExamined: 'CHEST',
    viewPosition: 'PA',
  };
  const ts = opts.transferSyntaxUid ?? TS.JPEGBaseline;
  const bytes = await encodeVariant(phantom.pixels, size, size, meta, ts, opts.jpegQuality);
  return { bytes, pixels: phantom.pixels, mask: createMask(size, size, phantom.mask.data), components: phantom.components, sopInstanceUid };
}
