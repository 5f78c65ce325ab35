/**
 * Finds images and their labels on disk, without decoding anything.
 *
 * siim:  <root>/dicom-images-train/**\/<SOPInstanceUID>.dcm + <root>/train-rle.csv (ImageId = file stem).
 * pairs: <root>/**\/<stem>.<ext> with <stem>_mask.<ext> beside it (Kaggle LGG layout); ext png/tif/tiff/jpg/jpeg.
 * labelmap: <root>/images/**\/<stem>.<dcm|png|tif|tiff|jpg|jpeg> + <root>/masks/**\/<stem>_mask.<png|tif|tiff>
 *   (pixel value = class index) + <root>/classes.json (class names, index 0 = background).
 * kaggle-multiclass: <root>/train_images/**\/<ImageId>.<dcm|png|jpg|...> + <root>/train.csv
 *   (ImageId,ClassId,EncodedPixels; Kaggle RLE; several rows for one class = union; an absent class
 *   has no row, an empty EncodedPixels or -1) + <root>/classes.json. ClassId indexes classes.json.
 *
 * Mismatches (an image with no label, a label with no image, a duplicate id) are counted and
 * skipped, never fatal: real exports are rarely perfectly consistent.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import { parseSiimRleCsv, type SiimRleTable } from '../../core/rle/siim-csv.ts';
import { DataError, type DatasetScan, type Layout, type SampleRef } from './types.ts';


const IMAGE_EXTS = new Set(['.png', '.tif', '.tiff', '.jpg', '.jpeg']);
const DICOM_OR_IMAGE_EXTS = new Set(['.dcm', ...IMAGE_EXTS]);
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
    const ref: SampleRef = { id, imagePath, format: 'image', label: { kind: 'file', path: maskPath } };
    if (id.includes('/')) ref.group = id.slice(0, id.lastIndexOf('/'));
    samples.push(ref);
  }
  // Folders are patients (LGG: <root>/<patient>/<patient>_<n>.tif). When every image sits in one
  // folder there is no patient structure to keep together: each image is its own group.
  if (new Set(samples.map((s) => s.group).filter((g) => g !== undefined)).size <= 1) for (const s of samples) delete s.group;
  let labelsWithoutImage = 0;
  for (const key of masks.keys()) if (!images.has(key)) labelsWithoutImage++;
  return { layout: 'pairs', root, samples, counts: { images: samples.length, imagesWithoutLabel, labelsWithoutImage, duplicates } };
}

/** classes.json: a JSON array of at least 2 distinct non-empty names; index 0 is the background. */
export async function readClasses(root: string): Promise<string[]> {
  const path = join(root, 'classes.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new DataError(`class list not found: ${path} (a JSON array of class names, index 0 = background)`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new DataError(`${path}: not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(v) || v.length < 2 || v.length > 255 || v.some((c) => typeof c !== 'string' || c.trim() === '')) {
    throw new DataError(`${path}: must be an array of 2..255 non-empty class names, index 0 = background`);
  }
  const names = v as string[];
  if (new Set(names).size !== names.length) throw new DataError(`${path}: class names must be unique`);
  return names;
}

export async function scanLabelmap(rootIn: string): Promise<DatasetScan> {
  const root = resolve(rootIn);
  await requireDir(root, 'data directory');
  const classes = await readClasses(root);
  const imagesDir = join(root, 'images');
  const masksDir = join(root, 'masks');
  await requireDir(imagesDir, 'label-map image folder (images/)');
  await requireDir(masksDir, 'label-map mask folder (masks/)');
  const images = new Map<string, string>();
  const masks = new Map<string, string>();
  let duplicates = 0;
  for (const f of await listFiles(imagesDir)) {
    if (!DICOM_OR_IMAGE_EXTS.has(extname(f).toLowerCase())) continue;
    const key = relative(imagesDir, join(dirname(f), basename(f, extname(f)))).split(sep).join('/');
    if (images.has(key)) duplicates++;
    else images.set(key, f);
  }
  for (const f of await listFiles(masksDir)) {
    if (!IMAGE_EXTS.has(extname(f).toLowerCase())) continue;
    const stem = relative(masksDir, join(dirname(f), basename(f, extname(f)))).split(sep).join('/');
    if (!stem.endsWith(MASK_SUFFIX)) continue;
    const key = stem.slice(0, -MASK_SUFFIX.length);
    if (masks.has(key)) duplicates++;
    else masks.set(key, f);
  }
  const samples: SampleRef[] = [];
  let imagesWithoutLabel = 0;
  for (const [id, imagePath] of images) {
    const maskPath = masks.get(id);
    if (!maskPath) {
      imagesWithoutLabel++;
      continue;
    }
    samples.push({ id, imagePath, format: extname(imagePath).toLowerCase() === '.dcm' ? 'dicom' : 'image', label: { kind: 'labelmap', path: maskPath } });
  }
  let labelsWithoutImage = 0;
  for (const key of masks.keys()) if (!images.has(key)) labelsWithoutImage++;
  return { layout: 'labelmap', root, classes, samples, counts: { images: samples.length, imagesWithoutLabel, labelsWithoutImage, duplicates } };
}

type ClassRows = Map<string, { classId: number; rle: string }[]>;

/**
 * train.csv of the Kaggle multi-class convention: header ImageId,ClassId,EncodedPixels (any case,
 * optional quotes and spaces). Rows with EncodedPixels empty or -1 say "this class is absent" and
 * contribute nothing but the image's presence. An ImageId with an extension (Severstal's
 * `0002cc93b.jpg`) is matched by its stem.
 */
export function parseMulticlassCsv(text: string, classCount: number, source = 'train.csv'): ClassRows {
  const table: ClassRows = new Map();
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  let sawHeader = false;
  const unq = (f: string): string => {
    const t = f.trim();
    return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).trim() : t;
  };
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!.replace(/\r$/, '');
    if (raw.trim() === '') continue;
    const fields = raw.split(',').map(unq);
    if (!sawHeader) {
      if (fields.length !== 3 || fields[0]!.toLowerCase() !== 'imageid' || fields[1]!.toLowerCase() !== 'classid' || fields[2]!.toLowerCase() !== 'encodedpixels') {
        throw new DataError(`${source} line ${n + 1}: expected header "ImageId,ClassId,EncodedPixels", got ${JSON.stringify(raw.slice(0, 60))}`);
      }
      sawHeader = true;
      continue;
    }
    if (fields.length !== 3) throw new DataError(`${source} line ${n + 1}: expected 3 comma-separated fields (ImageId,ClassId,EncodedPixels)`);
    const [rawId, cls, rle] = fields as [string, string, string];
    const id = rawId.replace(/\.(dcm|png|jpe?g|tiff?)$/i, '');
    if (id === '') throw new DataError(`${source} line ${n + 1}: empty ImageId`);
    const classId = Number(cls);
    if (!Number.isInteger(classId) || classId < 1 || classId >= classCount) {
      throw new DataError(`${source} line ${n + 1}: ClassId ${JSON.stringify(cls)} is not a class index in 1..${classCount - 1} (classes.json; 0 is the background)`);
    }
    if (rle !== '' && rle !== '-1' && !/^\d+(?:\s+\d+)*$/.test(rle)) throw new DataError(`${source} line ${n + 1}: EncodedPixels must be empty, -1 or Kaggle RLE`);
    let rows = table.get(id);
    if (!rows) table.set(id, (rows = []));
    if (rle !== '' && rle !== '-1') rows.push({ classId, rle });
  }
  if (!sawHeader) throw new DataError(`${source}: empty file, expected header "ImageId,ClassId,EncodedPixels"`);
  return table;
}

export async function scanKaggleMulticlass(rootIn: string): Promise<DatasetScan> {
  const root = resolve(rootIn);
  await requireDir(root, 'data directory');
  const classes = await readClasses(root);
  const imagesDir = join(root, 'train_images');
  await requireDir(imagesDir, 'image folder (train_images/)');
  const csvPath = join(root, 'train.csv');
  let text: string;
  try {
    text = await readFile(csvPath, 'utf8');
  } catch {
    throw new DataError(`label file not found: ${csvPath}`);
  }
  const table = parseMulticlassCsv(text, classes.length, csvPath);
  const samples: SampleRef[] = [];
  const seen = new Set<string>();
  let imagesWithoutLabel = 0;
  let duplicates = 0;
  for (const f of await listFiles(imagesDir)) {
    if (!DICOM_OR_IMAGE_EXTS.has(extname(f).toLowerCase())) continue;
    const id = basename(f, extname(f));
    if (seen.has(id)) {
      duplicates++;
      continue;
    }
    seen.add(id);
    const rows = table.get(id);
    if (!rows) {
      imagesWithoutLabel++;
      continue;
    }
    samples.push({ id, imagePath: f, format: extname(f).toLowerCase() === '.dcm' ? 'dicom' : 'image', label: { kind: 'class-rle', rows } });
  }
  let labelsWithoutImage = 0;
  for (const id of table.keys()) if (!seen.has(id)) labelsWithoutImage++;
  return { layout: 'kaggle-multiclass', root, classes, samples, counts: { images: samples.length, imagesWithoutLabel, labelsWithoutImage, duplicates } };
}

const NO_SAMPLES_HINT: Record<Layout, string> = {
  siim: 'no .dcm file under dicom-images-train/ has a row in train-rle.csv',
  pairs: 'no <stem>.<png|tif|tiff|jpg> with a <stem>_mask.<ext> beside it',
  labelmap: 'no images/<stem>.<dcm|png|...> with a masks/<stem>_mask.png',
  'kaggle-multiclass': 'no file under train_images/ has a row in train.csv',
};
const SCANNERS: Record<Layout, (root: string) => Promise<DatasetScan>> = { siim: scanSiim, pairs: scanPairs, labelmap: scanLabelmap, 'kaggle-multiclass': scanKaggleMulticlass };

export async function scanDataset(layout: Layout, root: string): Promise<DatasetScan> {
  const scan = await SCANNERS[layout](root);
  if (scan.samples.length === 0) throw new DataError(`no labelled images in ${scan.root} (${NO_SAMPLES_HINT[layout]})`);
  return scan;
}
