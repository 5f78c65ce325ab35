/**
 * The patient identity written into every synthetic DICOM. Deliberately obvious, so tests
 * elsewhere can assert these strings never reach logs or responses.
 */
export const SYNTHETIC_PATIENT_NAME = 'SYNTHETIC^PHANTOM';
export const SYNTHETIC_PATIENT_ID_PREFIX = 'SYN-';
export const SYNTHETIC_PATIENT_ID_PATTERN = /^SYN-\d{6}$/;

export function syntheticPatientId(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 999999) throw new RangeError(`synthetic patient number must be an integer in 0..999999, got ${n}`);
  return `${SYNTHETIC_PATIENT_ID_PREFIX}${String(n).padStart(6, '0')}`;
}
