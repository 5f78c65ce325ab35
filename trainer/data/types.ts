import type { DecodedImage } from '../../core/dicom/types.ts';
import type { Mask } from '../../core/mask.ts';

export type Layout = 'siim' | 'pairs' | 'labelmap' | 'kaggle-multiclass';

/** The layouts whose labels are class indices (softmax training, classes from classes.json). */
export const MULTICLASS_LAYOUTS: readonly Layout[] = ['labelmap', 'kaggle-multiclass'];
export const isMulticlassLayout = (l: Layout): boolean => MULTICLASS_LAYOUTS.includes(l);

/** Where an image's label comes from. */
export type LabelSource =
  /** SIIM train-rle.csv rows for this ImageId (several rows = union; empty list = no mask). */
  | { kind: 'rle'; encodings: string[] }
  /** A mask image next to the image (LGG-style `<stem>_mask.<ext>`). */
  | { kind: 'file'; path: string }
  /** A label-map image (8/16-bit grey, pixel value = class index). */
  | { kind: 'labelmap'; path: string }
  /** Kaggle multi-class CSV rows for this ImageId: (class index, Kaggle RLE); a class's mask is the union of its rows. */
  | { kind: 'class-rle'; rows: { classId: number; rle: string }[] };

/** One image found on disk with its label, before any decoding. */
export interface SampleRef {
  /** Stable identifier: the SOPInstanceUID file stem (SIIM) or the relative path without extension (pairs). */
  id: string;
  imagePath: string;
  format: 'dicom' | 'image';
  label: LabelSource;
  /**
   * Samples that must stay on one side of a train/validation split (the patient). Pairs layout: the
   * image's folder relative to the root (the LGG set has one folder per patient); undefined when all
   * images share one folder, and for SIIM (one image per id).
   */
  group?: string;
}

export interface ScanCounts {
  /** Images that were kept (have a label). */
  images: number;
  /** Image files with no label (SIIM: not in the CSV; pairs: no `_mask` file). */
  imagesWithoutLabel: number;
  /** Labels with no image (SIIM: CSV ImageIds with no .dcm; pairs: `_mask` files with no image). */
  labelsWithoutImage: number;
  /** The same id found twice (kept the first in path order). */
  duplicates: number;
}

export interface DatasetScan {
  layout: Layout;
  root: string;
  /** Multi-class layouts: the class names of classes.json, index 0 = background. */
  classes?: string[];
  samples: SampleRef[];
  counts: ScanCounts;
}

/** Row-major class indices (0 = background) at some resolution. */
export interface LabelMap {
  readonly rows: number;
  readonly cols: number;
  readonly data: Uint8Array;
}

/** An image and its mask at original resolution, straight from the shared decoders. */
export interface DecodedSample {
  image: DecodedImage;
  /** Foreground (for multi-class labels: any non-background class). */
  mask: Mask;
  /** Multi-class layouts: the class-index map. */
  labels?: LabelMap;
}

export type SampleDecoder = (ref: SampleRef) => Promise<DecodedSample>;

/** Unreadable data, bad layout: the CLI prints `message` on one line. */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}
