/** The HTTP answer to a series that cannot be segmented as one (every route taking a series uses it). */
import { Problem } from '../problem.ts';
import type { SeriesInputError } from './segment-instances.ts';

const CODES = {
  'too-many': 'SERIES_TOO_LARGE',
  'mixed-sizes': 'MIXED_SIZES',
  'mixed-series': 'MIXED_SERIES',
  'no-images': 'NO_IMAGES',
  unreadable: 'NOT_DICOM',
} as const;

export function seriesProblem(e: SeriesInputError): Problem {
  if (e.kind === 'too-many') return new Problem('payload-too-large', e.message, { code: CODES[e.kind] });
  return new Problem('unprocessable-dicom', e.message, { code: CODES[e.kind] });
}
