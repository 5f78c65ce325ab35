/**
 * DICOM Segmentation Storage (1.2.840.10008.5.1.4.1.1.66.4) writer, BINARY, one segment per label.
 *
 * The dataset is built here, attribute by attribute, as a dcmjs "naturalized" object and serialised by
 * dcmjs's Part 10 writer (DicomDict.write): core/dicom/write.ts cannot write sequences, and a SEG is
 * mostly sequences. dcmjs's own derivations.Segmentation is not used: it builds the SEG from a
 * "normalized" multi-frame copy of the source, and its normalizers only know CT/MR/PET/NM/US/OP/OCT,
 * not the Secondary Capture, CR and DX radiographs this service mostly sees; it also carries over the
 * source's attributes wholesale (whatever they are) instead of the modules the SEG IOD asks for.
 *
 * Patient and study attributes are copied from the sources into the SEG (it must carry them); nothing
 * here logs them, and errors name attributes, never their values.
 */
import dcmjs from 'dcmjs';
import { newUid, IMPLEMENTATION_CLASS_UID } from '../dicom/write.ts';
import type { Mask } from '../mask.ts';
import { codesForLabel, type SegmentCodes } from './codes.ts';

export const SEGMENTATION_STORAGE = '1.2.840.10008.5.1.4.1.1.66.4';
const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
const IMPLEMENTATION_VERSION_NAME = 'UNETSEG_SEG_0_1';

// dcmjs logs parse warnings through loglevel; they can quote values, so keep it to errors.
dcmjs.log.setLevel('error');

export type Dataset = Record<string, any>;

export interface SegFrameInput {
  /** Index into `sources`. */
  source: number;
  /** 0-based frame of that source (multi-frame sources); default 0. */
  frame?: number;
  /** One mask per label, in `labels` order, each the source's rows x columns (row-major, 0/1). */
  masks: Mask[];
}

export interface WriteSegInput {
  /** The source instances (Part 10 bytes): one image, a series of them, or multi-frame instances. */
  sources: Uint8Array[];
  /** The segmented frames; several may come from one multi-frame source. */
  frames: SegFrameInput[];
  /** One segment per label (skip a softmax model's background before calling). */
  labels: string[];
  algorithm: { name: string; version: string };
  /** 'all' (default): a segment for every label, even one with no foreground; 'nonEmpty': only labels with foreground somewhere. */
  segments?: 'all' | 'nonEmpty';
  /** Omit frames with no foreground (default true); at least one frame is always written. */
  omitEmptyFrames?: boolean;
  /** Per-label overrides of the default codes (codes.ts). */
  codes?: Record<string, SegmentCodes>;
  seriesDescription?: string;
  seriesNumber?: number;
  contentLabel?: string;
  contentDescription?: string;
  manufacturer?: string;
  /** Content/Series date and time; default now. */
  now?: Date;
  /** UID source for the new Series/SOP Instance UIDs (tests); default random 2.25 UIDs. */
  uid?: () => string;
}

export interface SegSegment {
  number: number;
  label: string;
  codes: SegmentCodes;
}

export interface SegFrameRef {
  /** 1-based SEG frame number. */
  segFrame: number;
  segmentNumber: number;
  sopInstanceUid: string;
  /** 1-based frame number in the source when it is multi-frame, else undefined. */
  referencedFrameNumber?: number;
}

export interface WriteSegResult {
  bytes: Uint8Array;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  segments: SegSegment[];
  frames: SegFrameRef[];
  rows: number;
  columns: number;
}

export class SegWriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SegWriteError';
  }
}

/** A sequence value as a list, whether dcmjs naturalized it as an array or a single item. */
export function items(v: unknown): Dataset[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? (v as Dataset[]) : [v as Dataset];
}

function nums(v: unknown): number[] | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const arr = (Array.isArray(v) ? v : String(v).split('\\')).map(Number);
  return arr.every(Number.isFinite) ? arr : undefined;
}

function first(v: unknown): unknown {
  return Array.isArray(v) ? v[0] : v;
}

/** Reads a source's header (stops before Pixel Data) into a dcmjs naturalized dataset. */
export function readHeader(bytes: Uint8Array): Dataset {
  // dcmjs reads an ArrayBuffer; share it when the bytes span all of it (it does not write to it).
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
  const ab = whole ? (bytes.buffer as ArrayBuffer) : (bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  let dict;
  try {
    dict = dcmjs.data.DicomMessage.readFile(ab, { untilTag: '7FE00010', includeUntilTagValue: false, ignoreErrors: true });
  } catch (e) {
    throw new SegWriteError(`source is not a readable DICOM Part 10 file (${(e as Error).message.slice(0, 120)})`);
  }
  return dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict);
}

interface FrameGeometry {
  position?: number[];
  orientation?: number[];
  spacing?: number[];
  thickness?: number;
  spacingBetween?: number;
}

/** Geometry of one source frame: from the (per-frame, then shared) functional groups, else the top level. */
function geometryOf(ds: Dataset, frame: number): FrameGeometry {
  const perFrame = items(ds.PerFrameFunctionalGroupsSequence)[frame] ?? {};
  const shared = items(ds.SharedFunctionalGroupsSequence)[0] ?? {};
  const fg = (seq: string, attr: string) => first(items(perFrame[seq])[0]?.[attr] !== undefined ? [items(perFrame[seq])[0]![attr]] : [items(shared[seq])[0]?.[attr]]);
  const position = nums(fg('PlanePositionSequence', 'ImagePositionPatient')) ?? nums(ds.ImagePositionPatient);
  const orientation = nums(fg('PlaneOrientationSequence', 'ImageOrientationPatient')) ?? nums(ds.ImageOrientationPatient);
  const spacing = nums(fg('PixelMeasuresSequence', 'PixelSpacing')) ?? nums(ds.PixelSpacing) ?? nums(ds.ImagerPixelSpacing);
  const thickness = nums(fg('PixelMeasuresSequence', 'SliceThickness'))?.[0] ?? nums(ds.SliceThickness)?.[0];
  const spacingBetween = nums(fg('PixelMeasuresSequence', 'SpacingBetweenSlices'))?.[0] ?? nums(ds.SpacingBetweenSlices)?.[0];
  return {
    position: position?.length === 3 ? position : undefined,
    orientation: orientation?.length === 6 ? orientation : undefined,
    spacing: spacing?.length === 2 ? spacing : undefined,
    thickness,
    spacingBetween,
  };
}

function same(a: number[] | undefined, b: number[] | undefined, eps = 1e-4): boolean {
  if (!a || !b) return a === b;
  return a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) <= eps);
}

/** DS values are at most 16 characters. */
function ds(n: number): string {
  let s = String(n);
  for (let p = 15; s.length > 16 && p > 0; p--) s = n.toPrecision(p).replace(/\.?0+(e|$)/, '$1');
  return s;
}

function dicomDate(d: Date): string {
  return `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
}
function dicomTime(d: Date): string {
  return `${String(d.getUTCHours()).padStart(2, '0')}${String(d.getUTCMinutes()).padStart(2, '0')}${String(d.getUTCSeconds()).padStart(2, '0')}`;
}

/** CS: upper case, digits, space, underscore; at most 16 characters. */
function cs(s: string, fallback: string): string {
  const v = s.toUpperCase().replace(/[^A-Z0-9_ ]+/g, '_').slice(0, 16).trim();
  return v || fallback;
}
/** LO: at most 64 characters, no backslash or control characters. */
function lo(s: string): string {
  return s.replace(/[\\\x00-\x1f]/g, ' ').slice(0, 64);
}

const PATIENT_ATTRS = ['PatientName', 'PatientID', 'IssuerOfPatientID', 'PatientBirthDate', 'PatientSex', 'OtherPatientIDsSequence', 'PatientAge', 'PatientSize', 'PatientWeight', 'PatientIdentityRemoved', 'DeidentificationMethod'];
const STUDY_ATTRS = ['StudyInstanceUID', 'StudyDate', 'StudyTime', 'ReferringPhysicianName', 'StudyID', 'AccessionNumber', 'StudyDescription', 'IssuerOfAccessionNumberSequence'];
/** Type 2 attributes of the Patient and General Study modules: present, empty when the source lacks them. */
const TYPE2 = ['PatientName', 'PatientID', 'PatientBirthDate', 'PatientSex', 'StudyDate', 'StudyTime', 'ReferringPhysicianName', 'StudyID', 'AccessionNumber'];

/** Packs frames of 0/1 pixels into one bit stream, LSB first, frames back to back (PS3.5 8.1.1), padded to even length. */
export function packBits(frames: Uint8Array[], pixelsPerFrame: number): Uint8Array {
  const totalBits = frames.length * pixelsPerFrame;
  const n = Math.ceil(totalBits / 8);
  const out = new Uint8Array(n + (n & 1));
  let bit = 0;
  for (const f of frames) {
    for (let i = 0; i < pixelsPerFrame; i++, bit++) if (f[i]) out[bit >> 3]! |= 1 << (bit & 7);
  }
  return out;
}

function anySet(a: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return true;
  return false;
}

const code = (CodeValue: string, CodingSchemeDesignator: string, CodeMeaning: string) => ({ CodeValue, CodingSchemeDesignator, CodeMeaning });
const SOURCE_FOR_PROCESSING = code('121322', 'DCM', 'Source image for image processing operation');
const SEGMENTATION_DERIVATION = code('113076', 'DCM', 'Segmentation');
const AI_FAMILY = code('123110', 'DCM', 'Artificial Intelligence');

/** The source headers, checked to make one SEG: one study, patient, Frame of Reference and frame size. */
interface Sources {
  headers: Dataset[];
  /** Source 0's header: patient, study and Frame of Reference come from it. */
  ref: Dataset;
  rows: number;
  columns: number;
}

/** A segment and the index of its label (its mask in every frame). */
type Segment = SegSegment & { li: number };

/** Geometry shared by every frame (else undefined), and each frame's position index along the normal. */
interface Geometry {
  frameOfReference: string | undefined;
  /** Every frame has a position and one orientation in the Frame of Reference: a 3D SEG. */
  positioned: boolean;
  orientation: number[] | undefined;
  spacing: number[] | undefined;
  thickness: number | undefined;
  spacingBetween: number | undefined;
  /** Per input frame. */
  frames: FrameGeometry[];
  /** Per input frame: 1-based position along the slice normal, or the order the frames were given in. */
  positionIndex: number[];
}

/** One SEG frame: a segment's mask in one input frame (index `fi`). */
interface SegFrame {
  seg: Segment;
  fi: number;
}

/** Everything the dataset is built from. */
interface SegPlan {
  input: WriteSegInput;
  sources: Sources;
  segments: Segment[];
  geometry: Geometry;
  segFrames: SegFrame[];
  sopInstanceUid: string;
  seriesInstanceUid: string;
  dimensionOrganizationUid: string;
  date: string;
  time: string;
}

/** Reads the sources' headers and checks they make one SEG (errors name attributes, never values). */
function readSources(input: WriteSegInput): Sources {
  const { sources, frames, labels } = input;
  if (sources.length === 0) throw new SegWriteError('no source instances');
  if (frames.length === 0) throw new SegWriteError('no frames to write');
  if (labels.length === 0) throw new SegWriteError('no labels');
  const headers = sources.map(readHeader);
  const ref = headers[0]!;
  const rows = Number(ref.Rows);
  const columns = Number(ref.Columns);
  if (!(rows > 0 && columns > 0)) throw new SegWriteError('source has no Rows/Columns');
  headers.forEach((h, i) => {
    if (!h.SOPInstanceUID || !h.SOPClassUID) throw new SegWriteError(`source ${i} has no SOP Class/Instance UID`);
    if (!h.StudyInstanceUID || !h.SeriesInstanceUID) throw new SegWriteError(`source ${i} has no Study/Series Instance UID, which a SEG must reference`);
    if (Number(h.Rows) !== rows || Number(h.Columns) !== columns) throw new SegWriteError(`source ${i} is ${h.Rows}x${h.Columns}, source 0 is ${rows}x${columns}: one SEG needs one frame size`);
    if (h.StudyInstanceUID !== ref.StudyInstanceUID) throw new SegWriteError(`source ${i} belongs to another study than source 0`);
    if (h.PatientID !== ref.PatientID) throw new SegWriteError(`source ${i} belongs to another patient than source 0`);
    if ((h.FrameOfReferenceUID ?? null) !== (ref.FrameOfReferenceUID ?? null)) throw new SegWriteError(`source ${i} has another Frame of Reference than source 0`);
  });
  return { headers, ref, rows, columns };
}

/** Each frame names an existing source frame, once, with one mask per label of the source's size. */
function checkFrames(input: WriteSegInput, { headers, rows, columns }: Sources): void {
  const seen = new Set<string>();
  for (const f of input.frames) {
    const h = headers[f.source];
    if (!h) throw new SegWriteError(`frame refers to source ${f.source}; there are ${input.sources.length}`);
    const nFrames = Number(h.NumberOfFrames ?? 1) || 1;
    const fr = f.frame ?? 0;
    if (!Number.isInteger(fr) || fr < 0 || fr >= nFrames) throw new SegWriteError(`frame ${fr} of source ${f.source} does not exist (it has ${nFrames})`);
    const key = `${f.source}/${fr}`;
    if (seen.has(key)) throw new SegWriteError(`frame ${fr} of source ${f.source} given twice`);
    seen.add(key);
    if (f.masks.length !== input.labels.length) throw new SegWriteError(`a frame has ${f.masks.length} masks for ${input.labels.length} labels`);
    for (const m of f.masks) {
      if (m.rows !== rows || m.cols !== columns) throw new SegWriteError(`mask is ${m.rows}x${m.cols}, the source is ${rows}x${columns}`);
    }
  }
}

/** Segments: every label, or only those with foreground somewhere; at least one. */
function chooseSegments(input: WriteSegInput): Segment[] {
  const { frames, labels } = input;
  const hasForeground = labels.map((_, li) => frames.some((f) => anySet(f.masks[li]!.data)));
  const chosen = labels.map((label, li) => ({ label, li })).filter(({ li }) => input.segments !== 'nonEmpty' || hasForeground[li]);
  if (chosen.length === 0) chosen.push({ label: labels[0]!, li: 0 }); // a SEG needs at least one segment
  return chosen.map(({ label, li }, i) => ({
    number: i + 1,
    label,
    li,
    codes: input.codes?.[label] ?? codesForLabel(label, i + 1),
  }));
}

/** One Frame of Reference, one orientation and spacing for all frames -> shared groups; positions -> index. */
function frameGeometry(frames: SegFrameInput[], { headers, ref }: Sources): Geometry {
  const geo = frames.map((f) => geometryOf(headers[f.source]!, f.frame ?? 0));
  const frameOfReference: string | undefined = ref.FrameOfReferenceUID || undefined;
  const allPositioned = frameOfReference !== undefined && geo.every((g) => g.position && g.orientation);
  const orientation = allPositioned && geo.every((g) => same(g.orientation, geo[0]!.orientation)) ? geo[0]!.orientation : undefined;
  const positioned = allPositioned && orientation !== undefined;
  return {
    frameOfReference,
    positioned,
    orientation,
    spacing: geo.every((g) => same(g.spacing, geo[0]!.spacing)) ? geo[0]!.spacing : undefined,
    thickness: geo.every((g) => g.thickness === geo[0]!.thickness) ? geo[0]!.thickness : undefined,
    spacingBetween: geo.every((g) => g.spacingBetween === geo[0]!.spacingBetween) ? geo[0]!.spacingBetween : undefined,
    frames: geo,
    positionIndex: positioned ? positionAlongNormal(geo, orientation!) : frames.map((_, i) => i + 1),
  };
}

/** 1-based index of each frame's position along the slice normal (equal positions share an index). */
function positionAlongNormal(geo: FrameGeometry[], o: number[]): number[] {
  const normal = [o[1]! * o[5]! - o[2]! * o[4]!, o[2]! * o[3]! - o[0]! * o[5]!, o[0]! * o[4]! - o[1]! * o[3]!];
  const dist = geo.map((g) => g.position!.reduce((s, v, k) => s + v * normal[k]!, 0));
  const distinct = [...new Set(dist.map((d) => Math.round(d * 1e4) / 1e4))].sort((a, b) => a - b);
  return dist.map((d) => distinct.indexOf(Math.round(d * 1e4) / 1e4) + 1);
}

/** SEG frames: by segment, then by position; empty ones omitted unless asked; at least one. */
function orderSegFrames(segments: Segment[], frames: SegFrameInput[], positionIndex: number[], omitEmpty: boolean): SegFrame[] {
  const order = frames.map((_, i) => i).sort((a, b) => positionIndex[a]! - positionIndex[b]! || a - b);
  const out: SegFrame[] = [];
  for (const seg of segments) {
    for (const fi of order) {
      if (!omitEmpty || anySet(frames[fi]!.masks[seg.li]!.data)) out.push({ seg, fi });
    }
  }
  if (out.length === 0) out.push({ seg: segments[0]!, fi: order[0]! });
  return out;
}

/** Patient, General Study: copied from the source (values never logged); the character set. */
function addPatientStudy(d: Dataset, ref: Dataset): void {
  for (const k of [...PATIENT_ATTRS, ...STUDY_ATTRS]) if (ref[k] !== undefined && ref[k] !== null) d[k] = ref[k];
  for (const k of TYPE2) if (d[k] === undefined) d[k] = '';
  if (ref.SpecificCharacterSet) d.SpecificCharacterSet = ref.SpecificCharacterSet;
  else if (/[^\x00-\x7e]/.test(JSON.stringify(d))) d.SpecificCharacterSet = 'ISO_IR 192';
}

/** General Series + Segmentation Series, Frame of Reference, General Equipment + Enhanced General Equipment. */
function addSeriesEquipment(d: Dataset, { input, sources, geometry, seriesInstanceUid, date, time }: SegPlan): void {
  const { ref } = sources;
  d.Modality = 'SEG';
  d.SeriesInstanceUID = seriesInstanceUid;
  d.SeriesNumber = String(input.seriesNumber ?? 9001);
  d.SeriesDate = date;
  d.SeriesTime = time;
  d.SeriesDescription = lo(input.seriesDescription ?? `Segmentation ${input.algorithm.name} ${input.algorithm.version}`);
  if (ref.BodyPartExamined) d.BodyPartExamined = ref.BodyPartExamined;

  if (geometry.frameOfReference) {
    d.FrameOfReferenceUID = geometry.frameOfReference;
    d.PositionReferenceIndicator = ref.PositionReferenceIndicator ?? '';
  }

  d.Manufacturer = lo(input.manufacturer ?? 'unet-segmentation');
  d.ManufacturerModelName = lo(input.algorithm.name);
  d.DeviceSerialNumber = '1';
  d.SoftwareVersions = lo(input.algorithm.version);
}

/** General Image, Segmentation Image, Image Pixel. */
function addSegmentationImage(d: Dataset, { input, sources, geometry, date, time }: SegPlan): void {
  d.InstanceNumber = '1';
  // Type 2C: needed when the frames are not positioned in the patient (a radiograph); copied, else empty.
  if (!geometry.positioned) d.PatientOrientation = sources.ref.PatientOrientation ?? '';
  d.ContentDate = date;
  d.ContentTime = time;
  d.ImageType = ['DERIVED', 'PRIMARY'];
  d.ContentLabel = cs(input.contentLabel ?? 'SEGMENTATION', 'SEGMENTATION');
  d.ContentDescription = lo(input.contentDescription ?? `${input.algorithm.name} ${input.algorithm.version}`);
  d.ContentCreatorName = '';
  d.SamplesPerPixel = 1;
  d.PhotometricInterpretation = 'MONOCHROME2';
  d.Rows = sources.rows;
  d.Columns = sources.columns;
  d.BitsAllocated = 1;
  d.BitsStored = 1;
  d.HighBit = 0;
  d.PixelRepresentation = 0;
  d.LossyImageCompression = '00';
  d.SegmentationType = 'BINARY';
}

/** Segment Sequence: one item per segment, its codes and the algorithm. */
function segmentSequence(segments: Segment[], algorithm: WriteSegInput['algorithm']): Dataset[] {
  return segments.map((s) => {
    const item: Dataset = {
      SegmentNumber: s.number,
      SegmentLabel: lo(s.label),
      SegmentedPropertyCategoryCodeSequence: [s.codes.category],
      SegmentedPropertyTypeCodeSequence: [s.codes.type],
      SegmentAlgorithmType: 'AUTOMATIC',
      SegmentAlgorithmName: lo(algorithm.name),
      SegmentationAlgorithmIdentificationSequence: [
        { AlgorithmFamilyCodeSequence: [AI_FAMILY], AlgorithmName: lo(algorithm.name), AlgorithmVersion: lo(algorithm.version) },
      ],
    };
    if (s.codes.cielab) item.RecommendedDisplayCIELabValue = s.codes.cielab;
    return item;
  });
}

/** Multi-frame Dimension: segment number, then position in the patient (3D) or in the stack. */
function addDimensions(d: Dataset, uid: string, positioned: boolean): void {
  d.DimensionOrganizationSequence = [{ DimensionOrganizationUID: uid }];
  d.DimensionIndexSequence = [
    {
      DimensionOrganizationUID: uid,
      DimensionIndexPointer: 0x0062000b,
      FunctionalGroupPointer: 0x0062000a,
      DimensionDescriptionLabel: 'ReferencedSegmentNumber',
    },
    positioned
      ? { DimensionOrganizationUID: uid, DimensionIndexPointer: 0x00200032, FunctionalGroupPointer: 0x00209113, DimensionDescriptionLabel: 'ImagePositionPatient' }
      : { DimensionOrganizationUID: uid, DimensionIndexPointer: 0x00209057, FunctionalGroupPointer: 0x00209111, DimensionDescriptionLabel: 'InStackPositionNumber' },
  ];
  if (positioned) d.DimensionOrganizationType = '3D';
}

/** Shared Functional Groups: pixel measures and (3D) orientation common to every frame. */
function sharedGroups(g: Geometry): Dataset {
  const sharedItem: Dataset = {};
  if (g.spacing) {
    const pm: Dataset = { PixelSpacing: g.spacing.map(ds) };
    if (g.thickness !== undefined) pm.SliceThickness = ds(g.thickness);
    if (g.spacingBetween !== undefined) pm.SpacingBetweenSlices = ds(g.spacingBetween);
    sharedItem.PixelMeasuresSequence = [pm];
  }
  if (g.positioned) sharedItem.PlaneOrientationSequence = [{ ImageOrientationPatient: g.orientation!.map(ds) }];
  return sharedItem;
}

/** Per-frame Functional Groups: source reference, dimension values, segment, (3D) position; and the frame refs. */
function perFrameGroups({ input, sources, geometry, segFrames }: SegPlan): { items: Dataset[]; refs: SegFrameRef[] } {
  const { positioned, positionIndex } = geometry;
  const refs: SegFrameRef[] = [];
  const groups = segFrames.map(({ seg, fi }, k) => {
    const f = input.frames[fi]!;
    const h = sources.headers[f.source]!;
    const multiFrame = (Number(h.NumberOfFrames ?? 1) || 1) > 1 || h.PerFrameFunctionalGroupsSequence !== undefined;
    const sourceRef: Dataset = { ReferencedSOPClassUID: h.SOPClassUID, ReferencedSOPInstanceUID: h.SOPInstanceUID };
    if (multiFrame) sourceRef.ReferencedFrameNumber = String((f.frame ?? 0) + 1);
    sourceRef.PurposeOfReferenceCodeSequence = [SOURCE_FOR_PROCESSING];
    const frameContent: Dataset = { DimensionIndexValues: [seg.number, positionIndex[fi]!] };
    if (!positioned) {
      frameContent.StackID = '1';
      frameContent.InStackPositionNumber = positionIndex[fi]!;
    }
    const item: Dataset = {
      DerivationImageSequence: [{ SourceImageSequence: [sourceRef], DerivationCodeSequence: [SEGMENTATION_DERIVATION] }],
      FrameContentSequence: [frameContent],
      SegmentIdentificationSequence: [{ ReferencedSegmentNumber: seg.number }],
    };
    if (positioned) item.PlanePositionSequence = [{ ImagePositionPatient: geometry.frames[fi]!.position!.map(ds) }];
    refs.push({ segFrame: k + 1, segmentNumber: seg.number, sopInstanceUid: h.SOPInstanceUID, referencedFrameNumber: multiFrame ? (f.frame ?? 0) + 1 : undefined });
    return item;
  });
  return { items: groups, refs };
}

/** Common Instance Reference: every source instance, by series. */
function referencedSeries(headers: Dataset[]): Dataset[] {
  const bySeries = new Map<string, Dataset[]>();
  for (const h of headers) {
    const list = bySeries.get(h.SeriesInstanceUID ?? '') ?? [];
    if (!list.some((r) => r.ReferencedSOPInstanceUID === h.SOPInstanceUID)) list.push({ ReferencedSOPClassUID: h.SOPClassUID, ReferencedSOPInstanceUID: h.SOPInstanceUID });
    bySeries.set(h.SeriesInstanceUID ?? '', list);
  }
  for (const s of bySeries.keys()) if (!s) throw new SegWriteError('a source has no Series Instance UID');
  return [...bySeries].map(([SeriesInstanceUID, ReferencedInstanceSequence]) => ({ SeriesInstanceUID, ReferencedInstanceSequence }));
}

/** The SEG dataset, module by module (attribute order as written), and its frames' source references. */
function buildDataset(plan: SegPlan): { dataset: Dataset; refs: SegFrameRef[] } {
  const { input, sources, geometry, segFrames } = plan;
  const d: Dataset = {};
  addPatientStudy(d, sources.ref);
  addSeriesEquipment(d, plan);
  addSegmentationImage(d, plan);
  d.SegmentSequence = segmentSequence(plan.segments, input.algorithm);
  addDimensions(d, plan.dimensionOrganizationUid, geometry.positioned);
  d.SharedFunctionalGroupsSequence = [sharedGroups(geometry)];
  const perFrame = perFrameGroups(plan);
  d.PerFrameFunctionalGroupsSequence = perFrame.items;
  d.NumberOfFrames = String(segFrames.length);
  d.ReferencedSeriesSequence = referencedSeries(sources.headers);

  // SOP Common.
  d.SOPClassUID = SEGMENTATION_STORAGE;
  d.SOPInstanceUID = plan.sopInstanceUid;
  d.InstanceCreationDate = plan.date;
  d.InstanceCreationTime = plan.time;

  // Pixel Data: 1 bit per pixel, frames back to back.
  const pixels = packBits(segFrames.map(({ seg, fi }) => input.frames[fi]!.masks[seg.li]!.data), sources.rows * sources.columns);
  d.PixelData = [pixels.buffer];
  d._vrMap = { PixelData: 'OB' };
  return { dataset: d, refs: perFrame.refs };
}

/** Part 10: file meta information (Explicit VR Little Endian) and the dataset, by dcmjs. */
function part10(d: Dataset, sopInstanceUid: string): Uint8Array {
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: SEGMENTATION_STORAGE,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_VR_LE,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION_NAME,
  };
  const dict = new dcmjs.data.DicomDict(dcmjs.data.DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(d);
  return new Uint8Array(dict.write());
}

export function writeSeg(input: WriteSegInput): WriteSegResult {
  const sources = readSources(input);
  checkFrames(input, sources);
  const segments = chooseSegments(input);
  const geometry = frameGeometry(input.frames, sources);
  const segFrames = orderSegFrames(segments, input.frames, geometry.positionIndex, input.omitEmptyFrames !== false);
  const uid = input.uid ?? (() => newUid());
  const sopInstanceUid = uid();
  const seriesInstanceUid = uid();
  const dimensionOrganizationUid = uid();
  const now = input.now ?? new Date();
  const plan: SegPlan = { input, sources, segments, geometry, segFrames, sopInstanceUid, seriesInstanceUid, dimensionOrganizationUid, date: dicomDate(now), time: dicomTime(now) };
  const { dataset, refs } = buildDataset(plan);
  return {
    bytes: part10(dataset, sopInstanceUid),
    sopInstanceUid,
    seriesInstanceUid,
    studyInstanceUid: sources.ref.StudyInstanceUID,
    segments: segments.map(({ number, label, codes }) => ({ number, label, codes })),
    frames: refs,
    rows: sources.rows,
    columns: sources.columns,
  };
}
