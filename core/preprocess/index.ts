export { normalizeInPlace, tensorFromImage, toTensor, toTensorSync } from './tensor.ts';
export { maskToModel, resizeMask } from './masks.ts';
export { applyIntensity, intensityTransform } from './intensity.ts';
export { bilinearAboveThresholdRuns, resampleFloat32, resampleRows, type AffineClamp } from './resample.ts';
export { parsePreprocessSpec } from './validate.ts';
export { PreprocessError, type PreprocessErrorCode } from './errors.ts';
export { PreprocessSpecSchema, type PreprocessSpec, type Intensity, type ResizeMethod } from './spec.ts';
