/**
 * Segment a set of DICOM instances as one series, whatever brought them (a DICOMweb pull, a DIMSE
 * association, a multipart POST): check they form one series, send every frame of every image
 * instance through the Engine at once (the dynamic batcher batches them), and write one DICOM SEG
 * whose frames reference their source instances and frames. Storing the SEG is the caller's business.
 *
 * Errors name counts, sizes and attribute names, never patient or study values.
 */
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Engine, SegmentRequest } from '../../core/engine/index.ts';
import type { SegmentResult } from '../../core/segmentation/records.ts';
import { manifestCodes } from '../../core/seg/codes.ts';
import { readHeader, writeSeg, type Dataset, type WriteSegResult } from '../../core/seg/write-seg.ts';

export type SeriesInputErrorKind = 'too-many' | 'mixed-sizes' | 'no-images' | 'mixed-series' | 'unreadable';

export class SeriesInputError extends Error {
  constructor(
    readonly kind: SeriesInputErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'SeriesInputError';
  }
}

export interface SeriesLimits {
  /** Most instances in one series. */
  maxInstances: number;
  /** Most frames (all instances together) in one series. */
  maxFrames: number;
}

/** Per-frame engine options a caller may set besides threshold and minArea (POST /segment's query), passed to every frame. */
type FrameOptions = Pick<SegmentRequest, 'topThreshold' | 'minComponentArea' | 'keepLargest' | 'tta' | 'preview'>;

export interface SegmentInstancesOptions extends SeriesLimits, FrameOptions {
  model?: string | undefined;
  version?: string | undefined;
  threshold?: number | undefined;
  minArea?: number | undefined;
  /** Keep only instances of this study (a PACS answer may carry strays); default: all must share one. */
  study?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface SeriesFrameResult {
  sopInstanceUid: string;
  /** 0-based frame of that instance. */
  frame: number;
  masks: Array<{ label: string; area: number; empty: boolean; bbox: [number, number, number, number] | null }>;
}

export interface SegmentedSeries {
  seg: WriteSegResult;
  model: { name: string; version: string };
  /** Image instances segmented (non-image instances are skipped). */
  instances: number;
  frames: SeriesFrameResult[];
  /** Every frame's full engine result, in `frames` order (masks included). */
  results: SegmentResult[];
  studyInstanceUid: string;
  seriesInstanceUid: string;
  timings: { segmentMs: number; writeMs: number };
}

/** Order of the instances in a series: by position along the normal when known, else InstanceNumber. */
function sortKey(h: Dataset): number {
  const ipp = (Array.isArray(h.ImagePositionPatient) ? h.ImagePositionPatient : []).map(Number);
  const iop = (Array.isArray(h.ImageOrientationPatient) ? h.ImageOrientationPatient : []).map(Number);
  if (ipp.length === 3 && iop.length === 6) {
    const n = [iop[1]! * iop[5]! - iop[2]! * iop[4]!, iop[2]! * iop[3]! - iop[0]! * iop[5]!, iop[0]! * iop[4]! - iop[1]! * iop[3]!];
    return ipp[0]! * n[0]! + ipp[1]! * n[1]! + ipp[2]! * n[2]!;
  }
  return Number(h.InstanceNumber ?? 0);
}

/** Attributes every instance of one SEG's sources must share (the SEG carries one of each). */
const SHARED = ['PatientID', 'StudyInstanceUID', 'SeriesInstanceUID', 'FrameOfReferenceUID'] as const;

const framesOf = (h: Dataset): number => Number(h.NumberOfFrames ?? 1) || 1;

function sharedCopy(bytes: Uint8Array): Uint8Array {
  const shared = new Uint8Array(new SharedArrayBuffer(bytes.length));
  shared.set(bytes);
  return shared;
}

function headerOf(bytes: Uint8Array, k: number): Dataset {
  try {
    return readHeader(bytes);
  } catch {
    throw new SeriesInputError('unreadable', `instance ${k + 1} is not a readable DICOM Part 10 file`);
  }
}

export async function segmentInstances(engine: Engine, instances: Uint8Array[], o: SegmentInstancesOptions): Promise<SegmentedSeries> {
  if (instances.length > o.maxInstances) throw new SeriesInputError('too-many', `the series has ${instances.length} instances; at most ${o.maxInstances} are segmented in one request`);
  const all = instances.map((bytes, k) => ({ bytes, header: headerOf(bytes, k) }));
  // Image instances only (a series may hold e.g. a presentation state), in slice order.
  const images = all.filter((x) => Number(x.header.Rows) > 0 && (o.study === undefined || x.header.StudyInstanceUID === o.study));
  if (images.length === 0) throw new SeriesInputError('no-images', 'the series has no image instances');
  images.sort((a, b) => sortKey(a.header) - sortKey(b.header));
  const sizes = new Set(images.map((x) => `${x.header.Rows}x${x.header.Columns}`));
  if (sizes.size > 1) throw new SeriesInputError('mixed-sizes', `the series mixes image sizes (${[...sizes].join(', ')}); one SEG needs one frame size`);
  for (const attr of SHARED) {
    const values = new Set(images.map((x) => String(x.header[attr] ?? '')));
    if (values.size > 1) throw new SeriesInputError('mixed-series', `the instances do not share one ${attr} (${values.size} different values); one SEG covers one series`);
  }
  const jobs: Array<{ source: number; frame: number }> = [];
  images.forEach((x, i) => {
    const n = framesOf(x.header);
    for (let f = 0; f < n && jobs.length <= o.maxFrames; f++) jobs.push({ source: i, frame: f });
  });
  if (jobs.length > o.maxFrames) throw new SeriesInputError('too-many', `the series has more than ${o.maxFrames} frames; at most ${o.maxFrames} are segmented in one request`);

  const t0 = performance.now();
  // One frame failing (a bad instance) cancels the others still queued: the request fails anyway.
  const abort = new AbortController();
  setMaxListeners(jobs.length + 10, abort.signal); // the engine listens once per frame
  const cancel = () => abort.abort();
  if (o.signal?.aborted) cancel();
  else o.signal?.addEventListener('abort', cancel, { once: true });
  const frameOptions: FrameOptions = { topThreshold: o.topThreshold, minComponentArea: o.minComponentArea, keepLargest: o.keepLargest, tta: o.tta, preview: o.preview };
  // A multi-frame instance goes to the engine once as shared memory, not copied once per frame (a
  // 64 MiB file of 2000 frames would otherwise be 128 GiB of copies, 64 of them held at once).
  const bytesOf = images.map((x) => (framesOf(x.header) > 1 ? sharedCopy(x.bytes) : x.bytes));
  // Every frame at once: the engine's queue and dynamic batcher decide how they run.
  let results: SegmentResult[];
  try {
    results = await Promise.all(
      jobs.map((j) =>
        engine
          .segment({ dicom: bytesOf[j.source]!, model: o.model, version: o.version, threshold: o.threshold, minArea: o.minArea, ...frameOptions, frame: j.frame, signal: abort.signal })
          .catch((e: unknown) => {
            cancel();
            throw e;
          }),
      ),
    );
  } finally {
    o.signal?.removeEventListener('abort', cancel);
  }
  const t1 = performance.now();
  const first = results[0]!;
  const manifest = engine.model(first.model.name, first.model.version)?.manifest;
  const background = manifest?.background;
  const labels = first.masks.map((m) => m.label).filter((l) => l !== background);
  const kept = (r: SegmentResult) => r.masks.filter((m) => m.label !== background);
  const seg = writeSeg({
    sources: images.map((x) => x.bytes),
    frames: jobs.map((j, k) => ({ source: j.source, frame: j.frame, masks: kept(results[k]!).map((m) => m.mask) })),
    labels,
    algorithm: { name: first.model.name, version: first.model.version },
    codes: manifestCodes(labels, manifest?.segments),
  });
  const t2 = performance.now();
  return {
    seg,
    model: { name: first.model.name, version: first.model.version },
    instances: images.length,
    frames: jobs.map((j, k) => ({
      sopInstanceUid: String(images[j.source]!.header.SOPInstanceUID),
      frame: j.frame,
      masks: kept(results[k]!).map((m) => ({ label: m.label, area: m.area, empty: m.empty, bbox: m.bbox })),
    })),
    results,
    studyInstanceUid: String(images[0]!.header.StudyInstanceUID ?? ''),
    seriesInstanceUid: String(images[0]!.header.SeriesInstanceUID ?? ''),
    timings: { segmentMs: t1 - t0, writeMs: t2 - t1 },
  };
}

/** What an answer says about a SEG (its UIDs, size and segments). */
export function segSummary(seg: WriteSegResult) {
  return {
    sopInstanceUid: seg.sopInstanceUid,
    seriesInstanceUid: seg.seriesInstanceUid,
    bytes: seg.bytes.length,
    frames: seg.frames.length,
    segments: seg.segments.map(({ number, label }) => ({ number, label })),
  };
}
