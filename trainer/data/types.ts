import type { DecodedImage } from '../../core/dicom/types.ts';
import type { Mask } from '../../core/mask.ts';

export type Layout = 'siim' | 'pairs';

/** Where an image's label comes from. */
export type LabelSource =
  /** SIIM train-rle.csv rows for this ImageId (several rows = union; empty list = no mask). */
  | { kind: 'rle'; encodings: string[] }
  /** A mask image next to the image (LGG-style `<stem>_mask.<ext>`). */
  | { kind: 'file'; path: string };

/** One image found on disk with its label, before any decoding. */
export interface SampleRef {
  /** Stable identifier: the SOPInstanceUID file stem (SIIM) or the relative path without extension (pairs). */
  id: string;
  imagePath: string;
  format: 'dicom' | 'image';
  label: LabelSource;
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
  samples: SampleRef[];
  counts: ScanCounts;
}

/** An image and its mask at original resolution, straight from the shared decoders. */
export interface DecodedSample {
  image: DecodedImage;
  mask: Mask;
}

export type SampleDecoder = (ref: SampleRef) => Promise<DecodedSample>;

/** Unreadable data, bad layout: the CLI prints `message` on one line. */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}
