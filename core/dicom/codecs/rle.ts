/**
 * RLE Lossless (PS3.5 Annex G): a 64-byte header of segment offsets, then one PackBits segment per
 * byte plane (most significant byte first) of each sample. Written here rather than taken from a
 * library because the only packaged decoders either read segment offsets without bounds checks
 * (dcmjs-codecs) or come bundled with a whole viewer; this one validates every offset and run.
 */
import { DicomError } from '../errors.ts';
import type { DecodedFrame, FrameInput, PixelCodec } from './types.ts';

function fail(message: string): DicomError {
  return new DicomError('CODEC_FAILED', `RLE: ${message}`);
}

/** Decodes one PackBits segment into `out`; returns bytes written. Surplus input is ignored, short output is the caller's error. */
function unpackBits(src: Uint8Array, start: number, end: number, out: Uint8Array): number {
  const n = out.length;
  let i = start;
  let o = 0;
  while (i < end && o < n) {
    const h = src[i++];
    if (h < 128) {
      const len = h + 1;
      if (i + len > end) throw fail(`literal run of ${len} bytes overruns its segment`);
      const take = Math.min(len, n - o);
      out.set(src.subarray(i, i + take), o);
      o += take;
      i += len;
    } else if (h > 128) {
      if (i >= end) throw fail('replicate run is missing its byte');
      const len = 257 - h;
      const v = src[i++];
      const take = Math.min(len, n - o);
      out.fill(v, o, o + take);
      o += take;
    }
    // h === 128 is a no-op (PackBits)
  }
  return o;
}

export const rleCodec: PixelCodec = {
  family: 'rle',
  library: 'built-in (PS3.5 Annex G)',
  async decode({ data, module: m }: FrameInput): Promise<DecodedFrame> {
    if (data.length < 64) throw fail(`frame is ${data.length} bytes, shorter than the 64-byte RLE header`);
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const bytesPerSample = m.bitsAllocated / 8;
    const expectedSegments = m.samplesPerPixel * bytesPerSample;
    const segments = dv.getUint32(0, true);
    if (segments !== expectedSegments) {
      throw new DicomError(
        'DIMENSION_MISMATCH',
        `RLE header declares ${segments} segments; ${m.samplesPerPixel} sample(s) of ${m.bitsAllocated} bits need ${expectedSegments}`,
      );
    }
    const offsets: number[] = [];
    for (let s = 0; s < segments; s++) offsets.push(dv.getUint32(4 + 4 * s, true));
    for (let s = 0; s < segments; s++) {
      const lo = offsets[s];
      if (lo < 64 || lo >= data.length) throw fail(`segment ${s + 1} offset ${lo} is outside the frame (${data.length} bytes)`);
      if (s > 0 && lo < offsets[s - 1]) throw fail(`segment ${s + 1} offset ${lo} precedes segment ${s}`);
    }

    const pixels = m.rows * m.columns;
    const plane = new Uint8Array(pixels);
    const total = pixels * m.samplesPerPixel;
    const out = bytesPerSample === 1 ? new Uint8Array(total) : bytesPerSample === 2 ? new Uint16Array(total) : new Uint32Array(total);
    for (let sample = 0; sample < m.samplesPerPixel; sample++) {
      const base = sample * pixels;
      for (let byte = 0; byte < bytesPerSample; byte++) {
        const s = sample * bytesPerSample + byte;
        const end = s + 1 < segments ? offsets[s + 1] : data.length;
        const target = bytesPerSample === 1 ? (out as Uint8Array).subarray(base, base + pixels) : plane;
        const written = unpackBits(data, offsets[s], end, target);
        if (written !== pixels) throw fail(`segment ${s + 1} decodes to ${written} bytes, the frame needs ${pixels}`);
        if (bytesPerSample > 1) {
          // Segments come most significant byte first.
          const shift = 8 * (bytesPerSample - 1 - byte);
          if (bytesPerSample === 2) {
            const o16 = out as Uint16Array;
            for (let i = 0; i < pixels; i++) o16[base + i] |= plane[i] << shift;
          } else {
            const o32 = out as Uint32Array;
            for (let i = 0; i < pixels; i++) o32[base + i] = (o32[base + i] | (plane[i] << shift)) >>> 0;
          }
        }
      }
    }
    return {
      samples: out,
      rows: m.rows,
      columns: m.columns,
      samplesPerPixel: m.samplesPerPixel,
      planar: m.samplesPerPixel === 3,
      colourSpace: 'declared',
      // RLE keeps whole allocated bytes, so stored bits sit at HighBit as in native data.
      bitShift: m.highBit + 1 - m.bitsStored,
    };
  },
};
