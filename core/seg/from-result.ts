/**
 * The SEG for one engine result: the segmented frame of the source DICOM, one segment per label
 * (a softmax model's background channel is left out), algorithm = the model's name and version,
 * segment codes from the manifest's `segments` where it names them (codes.ts's defaults otherwise).
 */
import type { ModelManifest } from '../manifest.ts';
import type { SegmentResult } from '../segmentation/records.ts';
import { manifestCodes } from './codes.ts';
import { writeSeg, type WriteSegResult } from './write-seg.ts';

export const SEG_MEDIA_TYPE = 'application/dicom';

export function segFor(result: SegmentResult, sourceBytes: Uint8Array, manifest?: Pick<ModelManifest, 'background' | 'segments'>): WriteSegResult {
  const kept = result.masks.filter((m) => m.label !== manifest?.background);
  const labels = kept.map((m) => m.label);
  return writeSeg({
    sources: [sourceBytes],
    frames: [{ source: 0, frame: result.image.frame, masks: kept.map((m) => m.mask) }],
    labels,
    algorithm: { name: result.model.name, version: result.model.version },
    codes: manifestCodes(labels, manifest?.segments),
  });
}
