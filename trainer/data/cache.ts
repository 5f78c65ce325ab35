/**
 * On-disk cache of preprocessed samples, so DICOM/PNG decoding and resizing happen once per
 * (file, spec) and every epoch after the first reads small binary records instead.
 *
 * One record per sample at `<dir>/<spec hash>/<key[0..2]>/<key>.rec`, where key hashes the image
 * path, its mtime and size, the label source (CSV rows or mask file path+mtime+size), the spec hash
 * and the storage dtype: editing a file, its label or the spec misses the cache; nothing is ever
 * served stale. Records are written to a temp name and renamed, so a crash leaves no torn record.
 *
 * Record: 'UTC1' | u32 header length | JSON header | pad to 8 | image tensor (C*H*W, dtype) |
 *         model-resolution mask (classes*H*W u8) | deflated original-resolution mask (rows*cols u8).
 * The original mask is kept for validation at original resolution; deflate makes it ~1 KB.
 * Multi-class records (header `target: 'labels'`) hold class-index maps instead of 0/1 planes: the
 * model-resolution map is H*W u8 (not classes*H*W: C times smaller; the loader one-hot encodes per
 * batch) and the original one is the class-index map at the image's size.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { toTensor, maskToModel } from '../../core/preprocess/index.ts';
import type { PreprocessSpec } from '../../core/preprocess/spec.ts';
import { createMask, maskArea, type Mask } from '../../core/mask.ts';
import { bytesPerValue, dequantise, quantise, type CacheDtype } from './quantize.ts';
import { DataError, type LabelMap, type SampleDecoder, type SampleRef } from './types.ts';

const MAGIC = 'UTC1';
const FORMAT_VERSION = 1;

export interface RecordMeta {
  channels: number;
  classes: number;
  height: number;
  width: number;
  dtype: CacheDtype;
  lo: number;
  hi: number;
  origRows: number;
  origCols: number;
  hasMask: boolean;
  /** Mask pixels at original resolution (multi-class: non-background pixels). */
  area: number;
  origMaskBytes: number;
  /** Range of the model-resolution tensor before quantisation (absent in records made before it was kept). */
  min?: number;
  max?: number;
  /** Range of the decoded image's values (modality units), before the intensity mapping. */
  imageMin?: number;
  imageMax?: number;
  /** Multi-class records: the masks are class-index maps (H*W and rows*cols), not 0/1 planes. */
  target?: 'labels';
  /** Multi-class records: pixels of each class at original resolution. */
  classAreas?: number[];
}

/** Values of the model-resolution mask in a record: classes*H*W planes, or one H*W class-index map. */
export const modelMaskLength = (m: RecordMeta): number => (m.target === 'labels' ? 1 : m.classes) * m.height * m.width;

/** A sample whose record exists: everything the loaders need without touching the record. */
export interface PreparedSample extends SampleRef {
  recordPath: string;
  meta: RecordMeta;
}

export interface CachedSample {
  meta: RecordMeta;
  /** C*H*W at model resolution, spec without dataset normalisation. */
  image: Float32Array;
  /** classes*H*W, 0/1, at model resolution (multi-class records: H*W class indices). */
  mask: Uint8Array;
  /** Present when asked for (binary records). */
  originalMask?: Mask;
  /** Present when asked for (multi-class records): class indices at original resolution. */
  originalLabels?: LabelMap;
}

export interface PrepareFailure {
  ref: SampleRef;
  message: string;
}

export interface PrepareResult {
  prepared: PreparedSample[];
  failed: PrepareFailure[];
  hits: number;
  misses: number;
}

/** Canonical JSON (sorted keys) so equal specs hash equally whatever their key order. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function specHash(spec: PreprocessSpec): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex');
}

async function fileSignature(path: string): Promise<string> {
  const s = await stat(path);
  return `${resolve(path)}|${s.mtimeMs}|${s.size}`;
}

export interface TensorCacheOptions {
  dir: string;
  /** The spec every record is made with (normalisation excluded; see loader). */
  spec: PreprocessSpec;
  dtype: CacheDtype;
  decode: SampleDecoder;
  /** Output classes; multi-class layouts: the number of classes (label values must be below it). */
  classes?: number;
}

export class TensorCache {
  readonly dir: string;
  readonly spec: PreprocessSpec;
  readonly dtype: CacheDtype;
  readonly specHash: string;
  private readonly decode: SampleDecoder;
  private readonly classes: number;

  constructor(o: TensorCacheOptions) {
    if (o.spec.normalize) throw new RangeError('cache records are made without dataset normalisation; pass the spec without `normalize`');
    this.spec = o.spec;
    this.dtype = o.dtype;
    this.decode = o.decode;
    this.classes = o.classes ?? 1;
    this.specHash = specHash(o.spec);
    this.dir = join(o.dir, this.specHash.slice(0, 16));
  }

  async keyFor(ref: SampleRef): Promise<string> {
    const l = ref.label;
    // Multi-class keys name the class count too (a label is checked against it when the record is made).
    const label =
      l.kind === 'rle'
        ? `rle:${l.encodings.join('|')}`
        : l.kind === 'file'
          ? `file:${await fileSignature(l.path)}`
          : l.kind === 'labelmap'
            ? `labelmap:${this.classes}:${await fileSignature(l.path)}`
            : `class-rle:${this.classes}:${l.rows.map((r) => `${r.classId}:${r.rle}`).join('|')}`;
    return createHash('sha256')
      .update([FORMAT_VERSION, await fileSignature(ref.imagePath), label, this.specHash, this.dtype].join('\n'))
      .digest('hex');
  }

  recordPath(key: string): string {
    return join(this.dir, key.slice(0, 2), `${key}.rec`);
  }

  /**
   * Make sure every sample has a record, decoding only the missing ones. A sample that cannot be
   * read is reported in `failed` (one bad file must not end a 12,000-image run).
   */
  async prepare(refs: readonly SampleRef[], o: { concurrency?: number; onProgress?: (done: number, total: number, hit: boolean) => void } = {}): Promise<PrepareResult> {
    const prepared = new Array<PreparedSample | undefined>(refs.length);
    const failed: PrepareFailure[] = [];
    let hits = 0;
    let misses = 0;
    let done = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < refs.length) {
        const i = next++;
        const ref = refs[i]!;
        let hit = false;
        try {
          const key = await this.keyFor(ref);
          const path = this.recordPath(key);
          let meta = await readMeta(path);
          if (meta) {
            hit = true;
            hits++;
          } else {
            misses++;
            meta = await this.build(ref, path);
          }
          prepared[i] = { ...ref, recordPath: path, meta };
        } catch (e) {
          failed.push({ ref, message: e instanceof Error ? e.message : String(e) });
        }
        o.onProgress?.(++done, refs.length, hit);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 2) }, worker));
    const ok = prepared.filter((p): p is PreparedSample => p !== undefined);
    this.refuseConstantInput(ok);
    return { prepared: ok, failed, hits, misses };
  }

  /**
   * An intensity mapping that turns every image into a constant (a window entirely above or below
   * the data, e.g. window:2000:3000 on 8-bit images) leaves nothing to learn: the dataset std is 0
   * (clamped to 1e-6) and training silently fits the label prior. Refused here, where every
   * record's range is known, with the data's actual range in the message.
   */
  private refuseConstantInput(samples: readonly PreparedSample[]): void {
    if (samples.length === 0) return;
    let value: number | undefined;
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of samples) {
      const r = tensorRange(s.meta);
      if (!r || r.max - r.min > 1e-6 * Math.max(1, Math.abs(r.max))) return;
      value ??= r.min;
      if (s.meta.imageMin !== undefined && s.meta.imageMin < lo) lo = s.meta.imageMin;
      if (s.meta.imageMax !== undefined && s.meta.imageMax > hi) hi = s.meta.imageMax;
    }
    const range = lo <= hi ? `; the images' values span ${lo}..${hi}` : '';
    throw new DataError(
      `intensity mapping ${describeIntensity(this.spec.intensity)} turns every pixel of all ${samples.length} image(s) into the constant ${value}: nothing to train on${range}; choose a window that overlaps the data`,
    );
  }

  private async build(ref: SampleRef, path: string): Promise<RecordMeta> {
    const { image, mask, labels } = await this.decode(ref);
    if (mask.rows !== image.rows || mask.cols !== image.columns) {
      throw new Error(`${ref.id}: mask is ${mask.rows}x${mask.cols} but image is ${image.rows}x${image.columns}`);
    }
    if (labels) return this.buildLabels(ref, path, image, labels);
    const { bytes, meta: imageMeta } = await this.imagePart(ref, image);
    const small = await maskToModel(mask, this.spec);
    const { height, width } = this.spec.size;
    if (small.data.length !== height * width) throw new Error(`${ref.id}: maskToModel returned ${small.rows}x${small.cols}, expected ${height}x${width}`);
    const area = maskArea(mask);
    const packedMask = deflateRawSync(mask.data, { level: 6 });
    const meta: RecordMeta = {
      ...imageMeta,
      origRows: mask.rows,
      origCols: mask.cols,
      hasMask: area > 0,
      area,
      origMaskBytes: packedMask.byteLength,
    };
    const modelMask = new Uint8Array(this.classes * height * width);
    modelMask.set(small.data.subarray(0, height * width));
    await writeRecord(path, meta, bytes, modelMask, packedMask);
    return meta;
  }

  /** The model input of a record, quantised, and the record fields that describe it (both record kinds). */
  private async imagePart(ref: SampleRef, image: Awaited<ReturnType<SampleDecoder>>['image']) {
    const tensor = await toTensor(image, this.spec);
    const { height, width } = this.spec.size;
    const channels = this.spec.channels;
    if (tensor.length !== channels * height * width) throw new Error(`${ref.id}: toTensor returned ${tensor.length} values, expected ${channels}x${height}x${width}`);
    const q = quantise(tensor, this.dtype);
    const r = valueRange(tensor);
    const meta = { channels, classes: this.classes, height, width, dtype: this.dtype, lo: q.lo, hi: q.hi, min: r.min, max: r.max, imageMin: image.min, imageMax: image.max };
    return { bytes: q.bytes, meta };
  }

  /** A multi-class record: the class-index map at model resolution (nearest) and at original resolution. */
  private async buildLabels(ref: SampleRef, path: string, image: Awaited<ReturnType<SampleDecoder>>['image'], labels: LabelMap): Promise<RecordMeta> {
    if (labels.rows !== image.rows || labels.cols !== image.columns) throw new Error(`${ref.id}: label map is ${labels.rows}x${labels.cols} but image is ${image.rows}x${image.columns}`);
    const classAreas = new Array<number>(this.classes).fill(0);
    for (let i = 0; i < labels.data.length; i++) {
      const v = labels.data[i]!;
      if (v >= this.classes) throw new Error(`${ref.id}: label value ${v} is not a class index (classes.json has ${this.classes} classes, 0..${this.classes - 1})`);
      classAreas[v]!++;
    }
    const { bytes, meta: imageMeta } = await this.imagePart(ref, image);
    const { height, width } = this.spec.size;
    const small = resizeLabels(labels, height, width);
    const packed = deflateRawSync(labels.data, { level: 6 });
    const area = labels.data.length - classAreas[0]!;
    const meta: RecordMeta = {
      ...imageMeta,
      origRows: labels.rows,
      origCols: labels.cols,
      hasMask: area > 0,
      area,
      origMaskBytes: packed.byteLength,
      target: 'labels',
      classAreas,
    };
    await writeRecord(path, meta, bytes, small.data, packed);
    return meta;
  }

  /** Read one record (a few hundred KB); the original mask is inflated only when asked for. */
  async read(p: PreparedSample, o: { originalMask?: boolean } = {}): Promise<CachedSample> {
    const buf = await readFile(p.recordPath);
    const { meta, offset } = parseHeader(buf, p.recordPath);
    const n = meta.channels * meta.height * meta.width;
    const imgBytes = n * bytesPerValue(meta.dtype);
    const maskLen = modelMaskLength(meta);
    if (buf.length !== offset + imgBytes + maskLen + meta.origMaskBytes) throw new Error(`cache record ${p.recordPath} is truncated; delete the cache directory`);
    const image = dequantise(new Uint8Array(buf.buffer, buf.byteOffset + offset, imgBytes), n, meta.dtype, meta.lo, meta.hi);
    const mask = new Uint8Array(buf.subarray(offset + imgBytes, offset + imgBytes + maskLen));
    const out: CachedSample = { meta, image, mask };
    if (o.originalMask) {
      const raw = inflateRawSync(buf.subarray(offset + imgBytes + maskLen));
      const data = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
      if (meta.target === 'labels') out.originalLabels = { rows: meta.origRows, cols: meta.origCols, data };
      else out.originalMask = createMask(meta.origRows, meta.origCols, data);
    }
    return out;
  }
}

function valueRange(x: Float32Array): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

/** The tensor's value range: recorded, or for older quantised records their [lo, hi]; undefined when unknown. */
function tensorRange(meta: RecordMeta): { min: number; max: number } | undefined {
  if (meta.min !== undefined && meta.max !== undefined) return { min: meta.min, max: meta.max };
  return meta.dtype === 'float32' ? undefined : { min: meta.lo, max: meta.hi };
}

function describeIntensity(intensity: PreprocessSpec['intensity']): string {
  if (intensity.kind === 'window') return `window:${intensity.center}:${intensity.width} (values ${intensity.center - intensity.width / 2}..${intensity.center + intensity.width / 2})`;
  return canonicalJson(intensity);
}

async function writeRecord(path: string, meta: RecordMeta, image: Uint8Array, modelMask: Uint8Array, packedOriginal: Uint8Array): Promise<void> {
  const header = Buffer.from(JSON.stringify(meta));
  const pre = 8 + header.length;
  const pad = (8 - (pre % 8)) % 8;
  const head = Buffer.alloc(pre + pad);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(header.length, 4);
  header.copy(head, 8);
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, Buffer.concat([head, image, modelMask, packedOriginal]));
  await rename(tmp, path);
}

/**
 * Nearest-neighbour resize of a class-index map, at the sampling positions of core's resizeMask
 * (floor((j + 0.5) * in / out), pixel-centre aligned), keeping the class values (resizeMask binarises).
 */
export function resizeLabels(m: LabelMap, rows: number, cols: number): LabelMap {
  const idx = (inSize: number, outSize: number): Int32Array => {
    const scale = inSize / outSize;
    return Int32Array.from({ length: outSize }, (_, j) => Math.min(inSize - 1, Math.floor((j + 0.5) * scale)));
  };
  const ri = idx(m.rows, rows);
  const ci = idx(m.cols, cols);
  const out = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const s = ri[r]! * m.cols;
    for (let c = 0; c < cols; c++) out[r * cols + c] = m.data[s + ci[c]!]!;
  }
  return { rows, cols, data: out };
}

function parseHeader(buf: Uint8Array, path: string): { meta: RecordMeta; offset: number } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 8 || b.toString('latin1', 0, 4) !== MAGIC) throw new Error(`${path} is not a cache record`);
  const len = b.readUInt32LE(4);
  if (b.length < 8 + len) throw new Error(`cache record ${path} is truncated`);
  const meta = JSON.parse(b.toString('utf8', 8, 8 + len)) as RecordMeta;
  const pre = 8 + len;
  return { meta, offset: pre + ((8 - (pre % 8)) % 8) };
}

/** The header of an existing record, or undefined when there is none (or it is unreadable). */
async function readMeta(path: string): Promise<RecordMeta | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const first = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(first, 0, first.length, 0);
    if (bytesRead < 8 || first.toString('latin1', 0, 4) !== MAGIC) return undefined;
    const len = first.readUInt32LE(4);
    const head = 8 + len <= bytesRead ? first : Buffer.alloc(8 + len);
    if (head !== first) await fh.read(head, 0, head.length, 0);
    const meta = JSON.parse(head.toString('utf8', 8, 8 + len)) as RecordMeta;
    // A record cut short (disk full, killed copy) is rebuilt rather than trusted.
    const pre = 8 + len;
    const expected = pre + ((8 - (pre % 8)) % 8) + meta.channels * meta.height * meta.width * bytesPerValue(meta.dtype) + modelMaskLength(meta) + meta.origMaskBytes;
    return (await fh.stat()).size === expected ? meta : undefined;
  } catch {
    return undefined;
  } finally {
    await fh.close();
  }
}
