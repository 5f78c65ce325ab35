/**
 * A received C-STORE dataset as a DICOM Part 10 file: the bytes arrive exactly as the sender encoded
 * them in the negotiated transfer syntax, so the file is the File Meta Information (core/dicom's
 * writer) in front of those bytes, untouched. No parse and re-encode: what the engine decodes is what
 * the modality sent.
 */
import { fileMetaHeader } from '../../core/dicom/write.ts';

const IMPLEMENTATION_VERSION_NAME = 'UNETSEG_DIMSE';

export interface Part10Meta {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  /** The calling AE title of the association that brought it (Source Application Entity Title). */
  sourceAeTitle?: string;
}

/** Preamble + "DICM" + the meta group + `dataset` (the C-STORE's data set bytes) as one buffer. */
export function part10(meta: Part10Meta, dataset: Buffer[]): Buffer {
  return Buffer.concat([fileMetaHeader({ ...meta, implementationVersionName: IMPLEMENTATION_VERSION_NAME }), ...dataset]);
}
