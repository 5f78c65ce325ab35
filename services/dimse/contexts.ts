/**
 * What the C-STORE SCP accepts in association negotiation: Verification (C-ECHO) and the storage SOP
 * classes of images the engine segments (one frame or multi-frame), each in the transfer syntaxes
 * core/dicom decodes. Everything else (SR, presentation states, SEG itself: a SEG sent back to us must
 * not loop) is rejected per presentation context as "abstract syntax not supported", so the sender
 * learns at association time instead of by a failed C-STORE.
 */
import dimse from 'dcmjs-dimse';
import type { association as dimseAssociation } from 'dcmjs-dimse';
import { TS } from '../../core/dicom/transfer-syntax.ts';

const { PresentationContextResult, SopClass } = dimse.constants;

/** Image storage SOP classes accepted (PS3.4 B.5), with a name for logs. */
export const IMAGE_STORAGE_CLASSES: ReadonlyMap<string, string> = new Map([
  ['1.2.840.10008.5.1.4.1.1.1', 'CR Image'],
  ['1.2.840.10008.5.1.4.1.1.1.1', 'Digital X-Ray Image (For Presentation)'],
  ['1.2.840.10008.5.1.4.1.1.1.1.1', 'Digital X-Ray Image (For Processing)'],
  ['1.2.840.10008.5.1.4.1.1.1.2', 'Digital Mammography X-Ray Image (For Presentation)'],
  ['1.2.840.10008.5.1.4.1.1.1.2.1', 'Digital Mammography X-Ray Image (For Processing)'],
  ['1.2.840.10008.5.1.4.1.1.2', 'CT Image'],
  ['1.2.840.10008.5.1.4.1.1.2.1', 'Enhanced CT Image'],
  ['1.2.840.10008.5.1.4.1.1.2.2', 'Legacy Converted Enhanced CT Image'],
  ['1.2.840.10008.5.1.4.1.1.4', 'MR Image'],
  ['1.2.840.10008.5.1.4.1.1.4.1', 'Enhanced MR Image'],
  ['1.2.840.10008.5.1.4.1.1.4.4', 'Legacy Converted Enhanced MR Image'],
  ['1.2.840.10008.5.1.4.1.1.7', 'Secondary Capture Image'],
  ['1.2.840.10008.5.1.4.1.1.7.2', 'Multi-frame Grayscale Byte Secondary Capture Image'],
  ['1.2.840.10008.5.1.4.1.1.7.3', 'Multi-frame Grayscale Word Secondary Capture Image'],
  ['1.2.840.10008.5.1.4.1.1.7.4', 'Multi-frame True Color Secondary Capture Image'],
]);

/**
 * Transfer syntaxes accepted for images, in the order the SCP prefers them when a context proposes
 * several: explicit VR LE first (keeps the VRs of private elements), then implicit VR LE, then the
 * compressed syntaxes core/dicom decodes (kept as sent: no transcoding on either side). Big endian and
 * deflate are left out: retired or rare on the wire, and a proposing SCU always offers a little endian one too.
 */
export const ACCEPTED_TRANSFER_SYNTAXES: readonly string[] = [
  TS.ExplicitVRLittleEndian,
  TS.ImplicitVRLittleEndian,
  TS.JPEGBaseline,
  TS.JPEGExtended,
  TS.JPEGLossless,
  TS.JPEGLosslessSV1,
  TS.JPEGLSLossless,
  TS.JPEGLSNearLossless,
  TS.JPEG2000Lossless,
  TS.JPEG2000,
  TS.RLELossless,
];

const UNCOMPRESSED = [TS.ExplicitVRLittleEndian, TS.ImplicitVRLittleEndian] as const;

/** The preferred accepted transfer syntax among those proposed, or undefined. */
export function chooseTransferSyntax(proposed: readonly string[], accepted: readonly string[] = ACCEPTED_TRANSFER_SYNTAXES): string | undefined {
  const offered = new Set(proposed.map((t) => t.trim()));
  return accepted.find((t) => offered.has(t));
}

export interface NegotiationSummary {
  accepted: number;
  rejected: number;
}

/** Sets every proposed presentation context's result on the association (the library sends them in the A-ASSOCIATE-AC). */
export function negotiate(association: dimseAssociation.Association): NegotiationSummary {
  let accepted = 0;
  let rejected = 0;
  for (const { id } of association.getPresentationContexts() as Array<{ id: number }>) {
    const context = association.getPresentationContext(id);
    const abstract = context.getAbstractSyntaxUid().trim();
    const proposed = context.getTransferSyntaxUids();
    if (abstract === SopClass.Verification || IMAGE_STORAGE_CLASSES.has(abstract)) {
      const ts = chooseTransferSyntax(proposed, abstract === SopClass.Verification ? UNCOMPRESSED : ACCEPTED_TRANSFER_SYNTAXES);
      if (ts) {
        context.setResult(PresentationContextResult.Accept, ts);
        accepted++;
      } else {
        context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
        rejected++;
      }
    } else {
      context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
      rejected++;
    }
  }
  return { accepted, rejected };
}
