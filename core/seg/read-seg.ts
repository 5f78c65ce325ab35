/**
 * A small DICOM SEG (BINARY) reader for tests and round trips: the segments, each frame's segment
 * and source reference, and the frames unpacked to 0/1 masks. Parsing is dcmjs's Part 10 reader.
 */
import dcmjs from 'dcmjs';
import { createMask, type Mask } from '../mask.ts';
import { items, SEGMENTATION_STORAGE, type Dataset } from './write-seg.ts';

export interface ReadSegFrame {
  segmentNumber: number;
  sopInstanceUid: string;
  sopClassUid: string;
  /** 1-based, present when the source is multi-frame. */
  referencedFrameNumber?: number;
  position?: number[];
  mask: Mask;
}

export interface ReadSeg {
  dataset: Dataset;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  rows: number;
  columns: number;
  segments: Array<{ number: number; label: string; category: string; type: string; algorithmName?: string }>;
  frames: ReadSegFrame[];
}

/** Unpacks n 1-bit pixels (LSB first) starting at bit `offset`. */
export function unpackBits(packed: Uint8Array, offset: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0, b = offset; i < n; i++, b++) out[i] = (packed[b >> 3]! >> (b & 7)) & 1;
  return out;
}

export function readSeg(bytes: Uint8Array): ReadSeg {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(ab).dict);
  if (ds.SOPClassUID !== SEGMENTATION_STORAGE) throw new Error(`not a Segmentation Storage object (SOP Class ${ds.SOPClassUID})`);
  if (ds.SegmentationType !== 'BINARY') throw new Error(`only BINARY segmentations are read, got ${ds.SegmentationType}`);
  const rows = Number(ds.Rows);
  const columns = Number(ds.Columns);
  const n = Number(ds.NumberOfFrames ?? 1);
  const pd = ds.PixelData;
  const packed = new Uint8Array(Array.isArray(pd) ? pd[0] : pd);
  const shared = items(ds.SharedFunctionalGroupsSequence)[0] ?? {};
  const perFrame = items(ds.PerFrameFunctionalGroupsSequence);
  const frames: ReadSegFrame[] = [];
  for (let i = 0; i < n; i++) {
    const fg = perFrame[i] ?? {};
    const segNo = Number(items(fg.SegmentIdentificationSequence ?? shared.SegmentIdentificationSequence)[0]?.ReferencedSegmentNumber);
    const src = items(items(fg.DerivationImageSequence)[0]?.SourceImageSequence)[0] ?? {};
    const pos = items(fg.PlanePositionSequence)[0]?.ImagePositionPatient;
    frames.push({
      segmentNumber: segNo,
      sopInstanceUid: src.ReferencedSOPInstanceUID,
      sopClassUid: src.ReferencedSOPClassUID,
      referencedFrameNumber: src.ReferencedFrameNumber !== undefined ? Number(src.ReferencedFrameNumber) : undefined,
      position: pos ? (Array.isArray(pos) ? pos : [pos]).map(Number) : undefined,
      mask: createMask(rows, columns, unpackBits(packed, i * rows * columns, rows * columns)),
    });
  }
  return {
    dataset: ds,
    sopInstanceUid: ds.SOPInstanceUID,
    seriesInstanceUid: ds.SeriesInstanceUID,
    studyInstanceUid: ds.StudyInstanceUID,
    rows,
    columns,
    segments: items(ds.SegmentSequence).map((s) => ({
      number: Number(s.SegmentNumber),
      label: s.SegmentLabel,
      category: items(s.SegmentedPropertyCategoryCodeSequence)[0]?.CodeMeaning,
      type: items(s.SegmentedPropertyTypeCodeSequence)[0]?.CodeMeaning,
      algorithmName: s.SegmentAlgorithmName,
    })),
    frames,
  };
}

/**
 * The mask of one segment on one source frame (empty when the SEG omitted that frame as empty).
 * frameNumber is 1-based and only matters for multi-frame sources.
 */
export function segMaskFor(seg: ReadSeg, segmentNumber: number, sopInstanceUid: string, frameNumber?: number): Mask {
  const f = seg.frames.find((x) => x.segmentNumber === segmentNumber && x.sopInstanceUid === sopInstanceUid && (x.referencedFrameNumber ?? 1) === (frameNumber ?? 1));
  return f ? f.mask : createMask(seg.rows, seg.columns);
}
