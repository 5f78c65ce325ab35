/** Synthetic data generator: phantoms, dataset layouts, in-memory DICOM helpers. */
export { mulberry32, deriveSeed, type Rng } from './rng.ts';
export { chestPhantom, type ChestPhantom, type ChestPhantomOptions, type LesionInfo, type LesionSite } from './chest.ts';
export { brainPhantom, renderBrainSlice, sampleBrainVolume, type BrainSlice, type BrainVolume, type BrainPhantomOptions } from './brain.ts';
export { generateSiimDataset, siimImage, siimCsvRows, chestDicom, SIIM_CSV_HEADER, type SiimDatasetOptions, type SiimDatasetResult, type SiimImageRecord, type ChestDicom } from './siim.ts';
export { generatePairsDataset, pairsCaseId, PAIRS_16BIT_MAX, type PairsDatasetOptions, type PairsDatasetResult, type PairRecord } from './pairs.ts';
export { encodeGrayDicom, encodeJpegBaseline, SYNTH_TRANSFER_SYNTAXES, SynthError } from './dicom-encode.ts';
export { encodeVariant } from './variants.ts';
export { SYNTHETIC_PATIENT_NAME, SYNTHETIC_PATIENT_ID_PATTERN, syntheticPatientId } from './identity.ts';
export {
  generateMulticlassDataset,
  multiclassImage,
  multiclassCsvRows,
  multiclassStem,
  chestLabelMap,
  MULTICLASS_CLASSES,
  MULTICLASS_CSV_HEADER,
  MULTICLASS_LAYOUTS,
  MISSING_CLASS_STYLES,
  type MulticlassDatasetOptions,
  type MulticlassDatasetResult,
  type MulticlassImageRecord,
  type MulticlassImage,
  type MulticlassLayout,
  type MissingClassStyle,
} from './multiclass.ts';
