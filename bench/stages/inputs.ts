import type { PreprocessSpec } from '../../core/preprocess/spec.ts';

/** The flagship model's preprocessing (bench/realpath's fixture manifest): 256x256, bilinear, min-max. */
export const STAGE_PREPROCESSING: PreprocessSpec = { size: { height: 256, width: 256 }, resize: 'bilinear', intensity: { kind: 'minmax' }, channels: 1 };
