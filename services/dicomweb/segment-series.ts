/**
 * Segment a whole series pulled from a PACS (WADO-RS) and store its SEG back (STOW-RS). The
 * segmentation itself is services/series/segment-instances.ts; the SEG is stored last, in one STOW-RS
 * of one instance, so nothing is stored when any step before it fails.
 */
import { performance } from 'node:perf_hooks';
import type { Engine } from '../../core/engine/index.ts';
import { segmentInstances, segSummary, type SegmentInstancesOptions, type SeriesFrameResult } from '../series/segment-instances.ts';
import type { DicomwebClient } from './client.ts';

export interface SegmentSeriesOptions extends Omit<SegmentInstancesOptions, 'study'> {
  study: string;
  series: string;
}

export interface SegmentSeriesResult {
  study: string;
  series: string;
  seg: ReturnType<typeof segSummary>;
  model: { name: string; version: string };
  instances: number;
  frames: SeriesFrameResult[];
  timings: { retrieveMs: number; segmentMs: number; writeMs: number; storeMs: number; totalMs: number };
}

export async function segmentSeries(client: DicomwebClient, engine: Engine, o: SegmentSeriesOptions): Promise<SegmentSeriesResult> {
  const t0 = performance.now();
  const pulled = await client.retrieveSeries(o.study, o.series);
  const tRetrieved = performance.now();
  const s = await segmentInstances(engine, pulled, o);
  const tWritten = performance.now();
  await client.store([s.seg.bytes], o.study);
  const tStored = performance.now();
  return {
    study: o.study,
    series: o.series,
    seg: segSummary(s.seg),
    model: s.model,
    instances: s.instances,
    frames: s.frames,
    timings: { retrieveMs: tRetrieved - t0, segmentMs: s.timings.segmentMs, writeMs: s.timings.writeMs, storeMs: tStored - tWritten, totalMs: tStored - t0 },
  };
}
