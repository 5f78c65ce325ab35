/**
 * Finds images and their labels on disk, without decoding anything.
 *
 * siim:  <root>/dicom-images-train/**\/<SOPInstanceUID>.dcm + <root>/train-rle.csv (ImageId = file stem).
 * pairs: <root>/**\/<stem>.<ext> with <stem>_mask.<ext> beside it (Kaggle LGG layout); ext png/tif/tiff/jpg/jpeg.
 *
 * Mismatches (an image with no label, a label with no image, a duplicate id) are counted and
 * skipped, never fatal: real exports are rarely perfectly consistent.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import { parseSiimRleCsv, type SiimRleTable } from '../../core/rle/siim-csv.ts';
import { DataError, type DatasetScan, type Layout, type SampleRef } from './types.ts';

const IMAGE_EXTS = new Set(['.png', '.tif', '.tiff', '.jpg', '.jpeg']);
const MASK_SUFFIX = '_mask';

async function requireDir(path: string, what: string): Promise<void> {
  let s;
  try {
    s = await stat(path);
  } catch {
    throw new DataError(`${what} not found: ${path}`);
  }
  if (!s.isDirectory()) throw new DataError(`${what} is not a directory: ${path}`);
}

async function listFiles(root: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(root, { recursive: true });
  } catch (e) {
    throw new DataError(`cannot list ${root}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  // Sorted so that "first" (duplicates) and every later step are independent of readdir order.
  return entries.map((e) => join(root, e)).sort();
}

export async function scanSiim(rootIn: string): Promise<DatasetScan> {
  const root = resolve(rootIn);
  await requireDir(root, 'data directory');
  const imagesDir = join(root, 'dicom-images-train');
  await requireDir(imagesDir, 'SIIM image folder (dicom-images-train/)');
  const csvPath = join(root, 'train-rle.csv');
  let csvText: string;
  try {
    csvText = await readFile(csvPath, 'utf8');
  } catch {
    throw new DataError(`SIIM label file not found: ${csvPath}`);
  }
  let labels: SiimRleTable;
  try {
    labels = parseSiimRleCsv(csvText, 'train-rle.csv');
  } catch (e) {
    throw new DataError(`${csvPath}: ${(e as Error).message}`);
  }
  const files = (await listFiles(imagesDir)).filter((f) => extname(f).toLowerCase() === '.dcm');
  const samples: SampleRef[] = [];
  const seen = new Set<string>();
  let imagesWithoutLabel = 0;
  let duplicates = 0;
  for (const f of files) {
    const id = basename(f, extname(f));
    if (seen.has(id)) {
      duplicates++;
      continue;
    }
    seen.add(id);
    const entry = labels.get(id);
    if (!entry) {
      imagesWithoutLabel++;
      continue;
    }
    samples.push({ id, imagePath: f, format: 'dicom', label: { kind: 'rle', encodings: entry.rles } });
  }
  let labelsWithoutImage = 0;
  for (const id of labels.keys()) if (!seen.has(id)) labelsWithoutImage++;
  return { layout: 'siim', root, samples, counts: { images: samples.length, imagesWithoutLabel, labelsWithoutImage, duplicates } };
}

export async function scanPairs(rootIn: string): Promise<DatasetScan> {
  const root = resolve(rootIn);
  await requireDir(root, 'data directory');
  const files = (await listFiles(root)).filter((f) => IMAGE_EXTS.has(extname(f).toLowerCase()));
  // stem (path without extension) -> file, for images and masks separately
  const images = new Map<string, string>();
  const masks = new Map<string, string>();
  let duplicates = 0;
  for (const f of files) {
    const stemPath = join(dirname(f), basename(f, extname(f)));
    const isMask = stemPath.endsWith(MASK_SUFFIX);
    const key = isMask ? stemPath.slice(0, -MASK_SUFFIX.length) : stemPath;
    const into = isMask ? masks : images;
    if (into.has(key)) duplicates++;
    else into.set(key, f);
  }
  const samples: SampleRef[] = [];
  let imagesWithoutLabel = 0;
  for (const [key, imagePath] of images) {
    const maskPath = masks.get(key);
    if (!maskPath) {
      imagesWithoutLabel++;
      continue;
    }
    const id = relative(root, key).split(sep).join('/');
    samples.push({ id, imagePath, format: 'image', label: { kind: 'file', path: maskPath } });
  }
  let labelsWithoutImage = 0;
  for (const key of masks.keys()) if (!images.has(key)) labelsWithoutImage++;
  return { layout: 'pairs', root, samples, counts: { images: samples.length, imagesWithoutLabel, labelsWithoutImage, duplicates } };
}

export async function scanDataset(layout: Layout, root: string): Promise<DatasetScan> {
  const scan = layout === 'siim' ? await scanSiim(root) : await scanPairs(root);
  if (scan.samples.length === 0) {
    const hint = layout === 'siim' ? 'no .dcm file under dicom-images-train/ has a row in train-rle.csv' : 'no <stem>.<png|tif|tiff|jpg> with a <stem>_mask.<ext> beside it';
    throw new DataError(`no labelled images in ${scan.root} (${hint})`);
  }
  return scan;
}
