/** multipart/related (RFC 2387) as DICOMweb uses it: WADO-RS responses and STOW-RS requests of application/dicom parts. */
import { randomUUID } from 'node:crypto';

export class MultipartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MultipartError';
  }
}

/** The boundary parameter of a multipart Content-Type (quoted or not). */
export function boundaryOf(contentType: string | null | undefined): string {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? '');
  if (!m) throw new MultipartError(`no multipart boundary in Content-Type ${JSON.stringify(contentType ?? '')}`);
  return (m[1] ?? m[2])!;
}

/** Splits a multipart body into its parts' bodies (headers dropped; their Content-Type kept). */
export function parseMultipart(body: Uint8Array, boundary: string): Array<{ contentType: string | undefined; body: Uint8Array }> {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const delim = Buffer.from(`--${boundary}`);
  const parts: Array<{ contentType: string | undefined; body: Uint8Array }> = [];
  let pos = buf.indexOf(delim);
  if (pos < 0) throw new MultipartError('multipart body has no boundary line');
  for (;;) {
    pos += delim.length;
    if (buf[pos] === 0x2d && buf[pos + 1] === 0x2d) break; // closing "--"
    const headerEnd = buf.indexOf('\r\n\r\n', pos);
    if (headerEnd < 0) throw new MultipartError('multipart part without a header end');
    const headers = buf.subarray(pos, headerEnd).toString('latin1');
    const ct = /^content-type:\s*(.+)$/im.exec(headers)?.[1]?.trim();
    const start = headerEnd + 4;
    const next = buf.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), start);
    if (next < 0) throw new MultipartError('multipart part without a closing boundary');
    parts.push({ contentType: ct, body: new Uint8Array(buf.subarray(start, next)) });
    pos = next + 2;
  }
  return parts;
}

/** A multipart/related body of application/dicom parts, and its Content-Type. */
export function buildMultipart(parts: Uint8Array[], type = 'application/dicom'): { body: Buffer; contentType: string } {
  const boundary = `unetseg-${randomUUID()}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${type}\r\n\r\n`));
    chunks.push(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="${type}"; boundary=${boundary}` };
}
