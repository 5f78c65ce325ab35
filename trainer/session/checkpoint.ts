import type { Checkpoint } from './types.ts';

/**
 * Checkpoint file layout: 8-byte magic "UNETCKP1", uint32 LE header length, UTF-8 JSON header
 * ({ format, config, step, tensors: [{ name, dims, offset }] }), zero padding to a 4-byte boundary,
 * then every tensor's float32 little-endian data at its offset (relative to the data start).
 */
const MAGIC = 'UNETCKP1';

export class CheckpointFormatError extends Error {
  override name = 'CheckpointFormatError';
}

export class CheckpointMismatchError extends Error {
  override name = 'CheckpointMismatchError';
}

interface Header {
  format: Checkpoint['format'];
  config: Checkpoint['config'];
  step: number;
  tensors: { name: string; dims: number[]; offset: number }[];
}

export function serializeCheckpoint(c: Checkpoint): Uint8Array {
  if (c.format !== 'unet-checkpoint-v1') throw new CheckpointFormatError(`unknown checkpoint format '${String(c.format)}'`);
  const entries = Object.entries(c.tensors);
  let offset = 0;
  const tensors = entries.map(([name, t]) => {
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new CheckpointFormatError(`tensor ${name}: ${t.data.length} values for dims [${t.dims}]`);
    const e = { name, dims: [...t.dims], offset };
    offset += t.data.byteLength;
    return e;
  });
  const header: Header = { format: c.format, config: c.config, step: c.step, tensors };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const dataStart = Math.ceil((12 + json.length) / 4) * 4;
  const out = new Uint8Array(dataStart + offset);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  entries.forEach(([, t], i) => {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(bytes, dataStart + tensors[i]!.offset);
  });
  return out;
}

export function deserializeCheckpoint(b: Uint8Array): Checkpoint {
  if (b.length < 12 || new TextDecoder().decode(b.subarray(0, 8)) !== MAGIC) throw new CheckpointFormatError('not a UNet checkpoint (bad magic)');
  const len = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(8, true);
  if (12 + len > b.length) throw new CheckpointFormatError('truncated checkpoint header');
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder().decode(b.subarray(12, 12 + len))) as Header;
  } catch (e) {
    throw new CheckpointFormatError(`unreadable checkpoint header: ${(e as Error).message}`);
  }
  if (header.format !== 'unet-checkpoint-v1') throw new CheckpointFormatError(`unknown checkpoint format '${String(header.format)}'`);
  const dataStart = Math.ceil((12 + len) / 4) * 4;
  const tensors: Checkpoint['tensors'] = {};
  for (const t of header.tensors) {
    const n = t.dims.reduce((x, y) => x * y, 1);
    const start = dataStart + t.offset;
    if (start + n * 4 > b.length) throw new CheckpointFormatError(`truncated checkpoint: tensor ${t.name}`);
    // Copy out: the result must not alias (or depend on the alignment of) the input buffer.
    const data = new Float32Array(n);
    new Uint8Array(data.buffer).set(b.subarray(start, start + n * 4));
    tensors[t.name] = { dims: t.dims, data };
  }
  return { format: header.format, config: header.config, step: header.step, tensors };
}
