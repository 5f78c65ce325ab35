/**
 * Segment a whole series pulled from a PACS: every frame of every image instance goes through the
 * Engine (all at once, so the dynamic batcher batches them), one SEG references them all, and the SEG
 * is stored back with STOW-RS. Nothing is stored when any step before STOW fails.
 */
import { performance } from 'node:perf_hooks';
import type { Engine } from '../../core/engine/index.ts';
import type { SegmentResult } from '../../core/segmentation/records.ts';
import { readHeader, writeSeg, type Dataset } from '../../core/seg/write-seg.ts';
import type { DicomwebClient } from './client.ts';

export class SeriesInputError extends Error {
  constructor(
    readonly kind: 'too-many' | 'mixed-sizes' | 'no-images',
    message: string,
  ) {
    super(message);
    this.name = 'SeriesInputError';
  }
}

export interface SegmentSeriesOptions {
  study: string;
  series: string;
  model?: string;
  version?: string;
  threshold?: number;
  minArea?: number;
  maxInstances: number;
  maxFrames: number;
  signal?: AbortSignal;
}

export interface SeriesFrameResult {
  sopInstanceUid: string;
  /** 0-based frame of that instance. */
  frame: number;
  masks: Array<{ label: string; area: number; empty: boolean; bbox: [number, number, number, number] | null }>;
}

export interface SegmentSeriesResult {
  study: string;
  series: string;
  seg: { sopInstanceUid: string; seriesInstanceUid: string; bytes: number; frames: number; segments: Array<{ number: number; label: string }> };
  model: { name: string; version: string };
  instances: number;
  frames: SeriesFrameResult[];
  timings: { retrieveMs: number; segmentMs: number; writeMs: number; storeMs: number; totalMs: number };
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

export async function segmentSeries(client: DicomwebClient, engine: Engine, o: SegmentSeriesOptions): Promise<SegmentSeriesResult> {
  const t0 = performance.now();
  const pulled = await client.retrieveSeries(o.study, o.series);
  const tRetrieved = performance.now();
  if (pulled.length > o.maxInstances) throw new SeriesInputError('too-many', `the series has ${pulled.length} instances; at most ${o.maxInstances} are segmented in one request`);

  // Image instances only (a series may hold e.g. a presentation state), in slice order.
  const all = pulled.map((bytes) => ({ bytes, header: readHeader(bytes) }));
  const images = all.filter((x) => Number(x.header.Rows) > 0 && x.header.StudyInstanceUID === o.study);
  if (images.length === 0) throw new SeriesInputError('no-images', 'the series has no image instances');
  images.sort((a, b) => sortKey(a.header) - sortKey(b.header));
  const sizes = new Set(images.map((x) => `${x.header.Rows}x${x.header.Columns}`));
  if (sizes.size > 1) throw new SeriesInputError('mixed-sizes', `the series mixes image sizes (${[...sizes].join(', ')}); one SEG needs one frame size`);
  const jobs: Array<{ source: number; frame: number }> = [];
  images.forEach((x, i) => {
    const n = Number(x.header.NumberOfFrames ?? 1) || 1;
    for (let f = 0; f < n; f++) jobs.push({ source: i, frame: f });
  });
  if (jobs.length > o.maxFrames) throw new SeriesInputError('too-many', `the series has ${jobs.length} frames; at most ${o.maxFrames} are segmented in one request`);

  // Every frame at once: the engine's queue and dynamic batcher decide how they run.
  const results: SegmentResult[] = await Promise.all(
    jobs.map((j) =>
      engine.segment({ dicom: images[j.source]!.bytes, model: o.model, version: o.version, threshold: o.threshold, minArea: o.minArea, frame: j.frame, signal: o.signal }),
    ),
  );
  const tSegmented = performance.now();
  const first = results[0]!;
  const info = engine.model(first.model.name, first.model.version);
  const background = info?.manifest.background;
  const labels = first.masks.map((m) => m.label).filter((l) => l !== background);
  const seg = writeSeg({
    sources: images.map((x) => x.bytes),
    frames: jobs.map((j, k) => ({ source: j.source, frame: j.frame, masks: results[k]!.masks.filter((m) => m.label !== background).map((m) => m.mask) })),
    labels,
    algorithm: { name: first.model.name, version: first.model.version },
  });
  const tWritten = performance.now();
  await client.store([seg.bytes], o.study);
  const tStored = performance.now();

  return {
    study: o.study,
    series: o.series,
    seg: { sopInstanceUid: seg.sopInstanceUid, seriesInstanceUid: seg.seriesInstanceUid, bytes: seg.bytes.length, frames: seg.frames.length, segments: seg.segments.map(({ number, label }) => ({ number, label })) },
    model: { name: first.model.name, version: first.model.version },
    instances: images.length,
    frames: jobs.map((j, k) => ({
      sopInstanceUid: images[j.source]!.header.SOPInstanceUID as string,
      frame: j.frame,
      masks: results[k]!.masks.filter((m) => m.label !== background).map((m) => ({ label: m.label, area: m.area, empty: m.empty, bbox: m.bbox })),
    })),
    timings: {
      retrieveMs: tRetrieved - t0,
      segmentMs: tSegmented - tRetrieved,
      writeMs: tWritten - tSegmented,
      storeMs: tStored - tWritten,
      totalMs: tStored - t0,
    },
  };
}
