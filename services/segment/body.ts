/** POST /segment's body: the DICOM itself, or multipart with the DICOM and optional ground truths. */
import type { FastifyRequest } from 'fastify';
import { isRleFormat, RLE_FORMATS, type RleFormat } from '../../core/rle/index.ts';
import { Problem } from '../problem.ts';

/** A ground truth as sent: RLE counts for one label, decoded once the image size is known. */
export interface GroundTruth {
  /** null = the `groundTruth` field, which means the model's first (for single-label models: only) label. */
  label: string | null;
  counts: string;
}

export interface SegmentBody {
  dicom: Buffer;
  truths: GroundTruth[];
  /** The ground truths' RLE format (groundTruthFormat, default the response's rleFormat). */
  truthFormat: RleFormat;
}

const GT_FIELD = /^groundTruth(?:\.(.+))?$/;

/** Reads the body in either form; `rleFormat` is the truths' format when the form names none. */
export async function readSegmentBody(request: FastifyRequest, limit: number, rleFormat: RleFormat): Promise<SegmentBody> {
  if (request.isMultipart()) {
    const mp = await readMultipart(request, limit);
    return { dicom: mp.dicom, truths: mp.truths, truthFormat: mp.truthFormat ?? rleFormat };
  }
  if (Buffer.isBuffer(request.body)) return { dicom: request.body, truths: [], truthFormat: rleFormat };
  throw new Problem('unsupported-media-type', 'send the DICOM as the body with Content-Type: application/dicom, or as multipart/form-data field "file"', {
    code: 'UNSUPPORTED_MEDIA_TYPE',
  });
}

/** Reads a multipart body: exactly one `file` part, optional ground-truth fields, nothing else. */
async function readMultipart(request: FastifyRequest, limit: number) {
  let dicom: Buffer | undefined;
  const truths: GroundTruth[] = [];
  let truthFormat: string | undefined;
  for await (const part of request.parts({ limits: { fileSize: limit, fieldSize: limit, files: 1, fields: 64, parts: 66 } })) {
    if (part.type === 'file') {
      if (part.fieldname !== 'file') throw new Problem('bad-multipart', `unexpected file part ${JSON.stringify(part.fieldname)}; send the DICOM as "file"`, { code: 'UNEXPECTED_PART' });
      dicom = await part.toBuffer();
      continue;
    }
    if (part.fieldname === 'file') throw new Problem('bad-multipart', 'send "file" as a file part (with a filename), not a text field', { code: 'FILE_NOT_A_FILE' });
    const value = typeof part.value === 'string' ? part.value : String(part.value);
    if (part.fieldname === 'groundTruthFormat') {
      truthFormat = value.trim();
      continue;
    }
    const m = GT_FIELD.exec(part.fieldname);
    if (!m) {
      throw new Problem('bad-multipart', `unexpected field ${JSON.stringify(part.fieldname)}; allowed: file, groundTruth, groundTruth.<label>, groundTruthFormat`, {
        code: 'UNEXPECTED_PART',
      });
    }
    const label = m[1] ?? null;
    if (truths.some((t) => t.label === label)) throw new Problem('bad-multipart', `field ${part.fieldname} sent twice`, { code: 'DUPLICATE_FIELD' });
    truths.push({ label, counts: value.trim() });
  }
  if (!dicom) throw new Problem('bad-multipart', 'multipart body has no "file" part with the DICOM; send it as form field "file" (a file part)', { code: 'MISSING_FILE' });
  if (truthFormat !== undefined && !isRleFormat(truthFormat)) {
    throw new Problem('bad-request', `groundTruthFormat must be one of ${RLE_FORMATS.join(', ')}, got ${JSON.stringify(truthFormat)}`, { code: 'VALIDATION' });
  }
  return { dicom, truths, truthFormat: truthFormat as RleFormat | undefined };
}
