import type { Mask } from '../mask.ts';
import { RleError } from './errors.ts';
import { decodeMask, encodeMask, unionMasks } from './index.ts';

/**
 * The SIIM-ACR `train-rle.csv` (header "ImageId, EncodedPixels", note the space) and Kaggle
 * submission CSVs. An image with no finding has one row with -1; an image with several
 * findings has one row per finding, and its mask is their union.
 */
export interface SiimRleEntry {
  /** Non-empty encodings, in file order; [] for an image whose rows are all -1. */
  rles: string[];
}

/** Image ids in first-seen order (Map iteration order) to their encodings. */
export type SiimRleTable = Map<string, SiimRleEntry>;

function unquote(field: string): string {
  const t = field.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).trim() : t;
}

// Digits and single spaces only; validated against the mask size when decoded.
const RLE_SYNTAX = /^\d+(?:\s+\d+)*$/;

/** Parse the whole CSV text. Malformed rows throw RleError naming the 1-based line. */
export function parseSiimRleCsv(text: string, source = 'train-rle.csv'): SiimRleTable {
  const table: SiimRleTable = new Map();
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0; // BOM
  let line = 0;
  let sawHeader = false;
  while (pos <= text.length) {
    let eol = text.indexOf('\n', pos);
    if (eol < 0) eol = text.length;
    let raw = text.slice(pos, eol);
    if (raw.endsWith('\r')) raw = raw.slice(0, -1);
    pos = eol + 1;
    line++;
    if (raw.trim() === '') continue;
    const comma = raw.indexOf(',');
    if (!sawHeader) {
      const fields = raw.split(',').map(unquote);
      if (fields.length !== 2 || fields[0] !== 'ImageId' || fields[1] !== 'EncodedPixels') {
        throw new RleError(`${source} line ${line}: expected header "ImageId, EncodedPixels", got ${JSON.stringify(raw.slice(0, 60))}`, { line });
      }
      sawHeader = true;
      continue;
    }
    if (comma < 0 || raw.indexOf(',', comma + 1) >= 0) {
      throw new RleError(`${source} line ${line}: expected 2 comma-separated fields (ImageId, EncodedPixels)`, { line });
    }
    const imageId = unquote(raw.slice(0, comma));
    const rle = unquote(raw.slice(comma + 1));
    if (imageId === '') throw new RleError(`${source} line ${line}: empty ImageId`, { line });
    if (rle !== '-1' && rle !== '' && !RLE_SYNTAX.test(rle)) {
      throw new RleError(`${source} line ${line}: EncodedPixels must be -1 or non-negative integers separated by spaces`, { line });
    }
    if (rle !== '-1' && rle !== '' && rle.split(/\s+/).length % 2 !== 0) {
      throw new RleError(`${source} line ${line}: EncodedPixels has an odd number of values`, { line });
    }
    let entry = table.get(imageId);
    if (!entry) {
      entry = { rles: [] };
      table.set(imageId, entry);
    }
    if (rle !== '-1' && rle !== '') entry.rles.push(rle);
  }
  if (!sawHeader) throw new RleError(`${source}: empty file, expected header "ImageId, EncodedPixels"`);
  return table;
}

/**
 * Decode an entry to one mask of rows x cols (the union of its encodings). SIIM's own file
 * uses the relative 'siim' form; pass 'kaggle' for files with absolute starts.
 */
export function decodeSiimEntry(entry: SiimRleEntry, rows: number, cols: number, format: 'siim' | 'kaggle' = 'siim'): Mask {
  if (entry.rles.length === 1) return decodeMask(entry.rles[0]!, format, rows, cols);
  return unionMasks(rows, cols, entry.rles.map((r) => decodeMask(r, format, rows, cols)));
}

export interface SubmissionRow {
  imageId: string;
  mask: Mask;
}

/**
 * A submission CSV ("ImageId,EncodedPixels", one row per image, -1 for an empty mask, LF line
 * ends). Ids containing a comma, quote or line break are rejected rather than quoted, since
 * Kaggle-style readers do not all unquote.
 */
export function formatSubmissionCsv(rows: Iterable<SubmissionRow>, format: 'kaggle' | 'siim'): string {
  const lines = ['ImageId,EncodedPixels'];
  for (const { imageId, mask } of rows) {
    if (imageId === '' || /[",\r\n]/.test(imageId)) throw new RangeError(`submission: image id ${JSON.stringify(imageId)} is empty or holds a comma, quote or line break`);
    const rle = encodeMask(mask, format);
    lines.push(`${imageId},${rle === '' ? '-1' : rle}`);
  }
  return lines.join('\n') + '\n';
}
