/**
 * A received C-STORE dataset as a DICOM Part 10 file: the bytes arrive exactly as the sender encoded
 * them in the negotiated transfer syntax, so the file is a File Meta Information group (always
 * explicit VR little endian, PS3.10 7.1) in front of those bytes, untouched. No parse and re-encode:
 * what the engine decodes is what the modality sent.
 */
import { IMPLEMENTATION_CLASS_UID } from '../../core/dicom/write.ts';

const IMPLEMENTATION_VERSION_NAME = 'UNETSEG_DIMSE';

function uiValue(s: string): Buffer {
  // UI values are padded with a NUL to an even length; SH/AE with a space.
  return Buffer.from(s.length % 2 ? `${s}\0` : s, 'latin1');
}

function textValue(s: string): Buffer {
  return Buffer.from(s.length % 2 ? `${s} ` : s, 'latin1');
}

/** One explicit VR LE element of group 0002 with a 16-bit length (UI, SH, AE, UL). */
function shortElement(element: number, vr: string, value: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(0x0002, 0);
  head.writeUInt16LE(element, 2);
  head.write(vr, 4, 'latin1');
  head.writeUInt16LE(value.length, 6);
  return Buffer.concat([head, value]);
}

export interface Part10Meta {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  /** The calling AE title of the association that brought it (Source Application Entity Title). */
  sourceAeTitle?: string;
}

/** Preamble + "DICM" + the meta group + `dataset` (the C-STORE's data set bytes) as one buffer. */
export function part10(meta: Part10Meta, dataset: Buffer[]): Buffer {
  const version = Buffer.alloc(14);
  version.writeUInt16LE(0x0002, 0);
  version.writeUInt16LE(0x0001, 2);
  version.write('OB', 4, 'latin1');
  version.writeUInt32LE(2, 8);
  version[12] = 0;
  version[13] = 1;
  const elements = [
    version,
    shortElement(0x0002, 'UI', uiValue(meta.sopClassUid)),
    shortElement(0x0003, 'UI', uiValue(meta.sopInstanceUid)),
    shortElement(0x0010, 'UI', uiValue(meta.transferSyntaxUid)),
    shortElement(0x0012, 'UI', uiValue(IMPLEMENTATION_CLASS_UID)),
    shortElement(0x0013, 'SH', textValue(IMPLEMENTATION_VERSION_NAME)),
    ...(meta.sourceAeTitle ? [shortElement(0x0016, 'AE', textValue(meta.sourceAeTitle))] : []),
  ];
  const body = Buffer.concat(elements);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(body.length, 0);
  const preamble = Buffer.alloc(132);
  preamble.write('DICM', 128, 'latin1');
  return Buffer.concat([preamble, shortElement(0x0000, 'UL', groupLength), body, ...dataset]);
}
