/**
 * Synthetic SEG sources for tests: an MR series (one instance per slice, with Frame of Reference,
 * positions, orientation, spacing), the same slices as one legacy multi-frame Secondary Capture, and
 * as one enhanced-style multi-frame MR whose geometry lives in the functional groups.
 * Patient identity is synth's SYNTHETIC^PHANTOM.
 */
import dcmjs from 'dcmjs';
import { createMask, type Mask } from '../mask.ts';
import { newUid, writeDicom } from '../dicom/write.ts';
import { mulberry32, renderBrainSlice, sampleBrainVolume, SYNTHETIC_PATIENT_NAME, syntheticPatientId } from '../../synth/index.ts';

export const MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4';
export const ENHANCED_MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4.1';
export const MF_GRAYSCALE_BYTE_SC = '1.2.840.10008.5.1.4.1.1.7.2';

export interface BrainSeries {
  /** One Part 10 MR instance per slice, bottom to top. */
  sources: Uint8Array[];
  sopInstanceUids: string[];
  studyInstanceUid: string;
  seriesInstanceUid: string;
  /** Per slice: [tumour, brain] masks. */
  masks: Mask[][];
  labels: string[];
  pixels: Uint8Array[];
  size: number;
}

function datasetBytes(ds: Record<string, any>): Uint8Array {
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: ds.SOPClassUID,
    MediaStorageSOPInstanceUID: ds.SOPInstanceUID,
    TransferSyntaxUID: '1.2.840.10008.1.2.1',
    ImplementationClassUID: '2.25.270998146460335286591339219416934386377',
  };
  const dict = new dcmjs.data.DicomDict(dcmjs.data.DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(ds);
  return new Uint8Array(dict.write());
}

/** n axial slices of one synthetic head; labels tumour (synth's truth) and brain (a crude head mask). */
export function brainSeries(seed: number, n = 20, size = 256): BrainSeries {
  const rng = mulberry32(seed);
  const vol = sampleBrainVolume(rng);
  const studyInstanceUid = newUid(rng);
  const seriesInstanceUid = newUid(rng);
  const frameOfReferenceUid = newUid(rng);
  const spacing = 240 / size;
  const sources: Uint8Array[] = [];
  const sopInstanceUids: string[] = [];
  const masks: Mask[][] = [];
  const pixels: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const slice = renderBrainSlice(vol, (i + 0.5) / n, size);
    const brain = createMask(size, size, Uint8Array.from(slice.pixels, (v) => (v > 40 ? 1 : 0)));
    masks.push([slice.mask, brain]);
    pixels.push(slice.pixels);
    const sop = newUid(rng);
    sopInstanceUids.push(sop);
    const px = new Uint16Array(size * size);
    for (let k = 0; k < px.length; k++) px[k] = Math.round(slice.intensity[k]! * 4095);
    sources.push(
      datasetBytes({
        SpecificCharacterSet: 'ISO_IR 100',
        SOPClassUID: MR_IMAGE_STORAGE,
        SOPInstanceUID: sop,
        ImageType: ['ORIGINAL', 'PRIMARY', 'M', 'NONE'],
        StudyDate: '20240102',
        StudyTime: '101500',
        AccessionNumber: 'SYNACC1',
        Modality: 'MR',
        Manufacturer: 'synth',
        ReferringPhysicianName: '',
        PatientName: SYNTHETIC_PATIENT_NAME,
        PatientID: syntheticPatientId(seed % 1000000),
        PatientBirthDate: '19700101',
        PatientSex: 'O',
        ScanningSequence: 'SE',
        SequenceVariant: 'NONE',
        ScanOptions: '',
        MRAcquisitionType: '2D',
        EchoTime: '10',
        RepetitionTime: '500',
        EchoTrainLength: '1',
        MagneticFieldStrength: '1.5',
        SliceThickness: '5',
        SpacingBetweenSlices: '5',
        StudyInstanceUID: studyInstanceUid,
        SeriesInstanceUID: seriesInstanceUid,
        StudyID: '1',
        SeriesNumber: '3',
        InstanceNumber: String(i + 1),
        ImagePositionPatient: ['-120', '-120', String(-50 + 5 * i)],
        ImageOrientationPatient: ['1', '0', '0', '0', '1', '0'],
        FrameOfReferenceUID: frameOfReferenceUid,
        PositionReferenceIndicator: '',
        SamplesPerPixel: 1,
        PhotometricInterpretation: 'MONOCHROME2',
        Rows: size,
        Columns: size,
        PixelSpacing: [String(spacing), String(spacing)],
        BitsAllocated: 16,
        BitsStored: 12,
        HighBit: 11,
        PixelRepresentation: 0,
        PixelData: [px.buffer],
        _vrMap: { PixelData: 'OW' },
      }),
    );
  }
  return { sources, sopInstanceUids, studyInstanceUid, seriesInstanceUid, masks, labels: ['tumour', 'brain'], pixels, size };
}

/** The series' slices as one legacy multi-frame 8-bit Secondary Capture (no patient geometry). */
export function multiFrameSc(series: BrainSeries, seed: number): { bytes: Uint8Array; sopInstanceUid: string } {
  const rng = mulberry32(seed);
  const sopInstanceUid = newUid(rng);
  const n = series.pixels.length;
  const all = new Uint8Array(n * series.size * series.size);
  series.pixels.forEach((p, i) => all.set(p, i * p.length));
  const bytes = writeDicom({
    rows: series.size,
    columns: series.size,
    pixels: all,
    bitsAllocated: 8,
    numberOfFrames: n,
    sopClassUid: MF_GRAYSCALE_BYTE_SC,
    sopInstanceUid,
    studyInstanceUid: newUid(rng),
    seriesInstanceUid: newUid(rng),
    modality: 'OT',
    patientName: SYNTHETIC_PATIENT_NAME,
    patientId: syntheticPatientId(seed % 1000000),
  });
  return { bytes, sopInstanceUid };
}

/** The series' slices as one enhanced-style multi-frame MR: geometry in the shared and per-frame functional groups. */
export function enhancedMultiFrame(series: BrainSeries, seed: number): { bytes: Uint8Array; sopInstanceUid: string; positions: number[][] } {
  const rng = mulberry32(seed);
  const sopInstanceUid = newUid(rng);
  const n = series.pixels.length;
  const size = series.size;
  const all = new Uint8Array(n * size * size);
  series.pixels.forEach((p, i) => all.set(p, i * p.length));
  const positions = series.pixels.map((_, i) => [-120, -120, -50 + 5 * i]);
  const spacing = String(240 / size);
  const bytes = datasetBytes({
    SOPClassUID: ENHANCED_MR_IMAGE_STORAGE,
    SOPInstanceUID: sopInstanceUid,
    Modality: 'MR',
    PatientName: SYNTHETIC_PATIENT_NAME,
    PatientID: syntheticPatientId(seed % 1000000),
    StudyInstanceUID: newUid(rng),
    SeriesInstanceUID: newUid(rng),
    FrameOfReferenceUID: newUid(rng),
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    NumberOfFrames: String(n),
    Rows: size,
    Columns: size,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    SharedFunctionalGroupsSequence: [
      {
        PixelMeasuresSequence: [{ PixelSpacing: [spacing, spacing], SliceThickness: '5' }],
        PlaneOrientationSequence: [{ ImageOrientationPatient: ['1', '0', '0', '0', '1', '0'] }],
      },
    ],
    // Frames stored top to bottom, so the SEG's position order differs from the frame order.
    PerFrameFunctionalGroupsSequence: positions.map((p) => ({ PlanePositionSequence: [{ ImagePositionPatient: p.map(String) }] })),
    PixelData: [all.buffer],
    _vrMap: { PixelData: 'OB' },
  });
  return { bytes, sopInstanceUid, positions };
}
