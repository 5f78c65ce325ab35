import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DecodedFrame, SampleArray } from './codecs/types.ts';
import type { PixelModule } from './pixel-module.ts';
import { toLuminance } from './pixels.ts';

function module(o: Partial<PixelModule> = {}): PixelModule {
  return {
    rows: 1,
    columns: 4,
    samplesPerPixel: 1,
    bitsAllocated: 16,
    bitsStored: 12,
    highBit: 11,
    pixelRepresentation: 0,
    photometricInterpretation: 'MONOCHROME2',
    planarConfiguration: 0,
    numberOfFrames: 1,
    rescaleSlope: 1,
    rescaleIntercept: 0,
    ...o,
  };
}

function frame(samples: SampleArray, m: PixelModule, o: Partial<DecodedFrame> = {}): DecodedFrame {
  return { samples, rows: m.rows, columns: m.columns, samplesPerPixel: m.samplesPerPixel, planar: false, colourSpace: 'declared', bitShift: 0, ...o };
}

/** The per-value definition, written out without any table. */
function expected(raw: number, m: PixelModule, bitShift = 0): number {
  let v = Math.floor(raw / 2 ** bitShift) % 2 ** m.bitsStored;
  if (m.pixelRepresentation === 1 && v >= 2 ** (m.bitsStored - 1)) v -= 2 ** m.bitsStored;
  let y = v * m.rescaleSlope + m.rescaleIntercept;
  if (m.photometricInterpretation === 'MONOCHROME1') {
    const lo = m.pixelRepresentation === 1 ? -(2 ** (m.bitsStored - 1)) : 0;
    const hi = m.pixelRepresentation === 1 ? 2 ** (m.bitsStored - 1) - 1 : 2 ** m.bitsStored - 1;
    const a = lo * m.rescaleSlope + m.rescaleIntercept;
    const b = hi * m.rescaleSlope + m.rescaleIntercept;
    y = Math.min(a, b) + Math.max(a, b) - y;
  }
  return Math.fround(y);
}

test('cached lookup tables never mix parameter sets: interleaved decodes each get their own mapping', () => {
  // Same raw samples, every parameter that shapes the table varied one at a time, decoded in an
  // order that returns to earlier parameter sets (served from the cache the second time).
  const raw = Uint16Array.of(0, 0x07ff, 0x0800, 0xffff);
  const variants: Array<{ m: PixelModule; bitShift?: number }> = [
    { m: module() },
    { m: module({ rescaleSlope: 2 }) },
    { m: module({ rescaleIntercept: -1024 }) },
    { m: module({ rescaleIntercept: -0 }) },
    { m: module({ pixelRepresentation: 1 }) },
    { m: module({ bitsStored: 16, highBit: 15 }) },
    { m: module({ photometricInterpretation: 'MONOCHROME1' }) },
    { m: module({ photometricInterpretation: 'MONOCHROME1', rescaleSlope: 0.5, rescaleIntercept: 10 }) },
    { m: module(), bitShift: 4 },
  ];
  for (const round of [0, 1]) {
    for (const { m, bitShift } of round ? [...variants].reverse() : variants) {
      const lum = toLuminance(frame(raw, m, { bitShift: bitShift ?? 0 }), m);
      const want = Array.from(raw, (r) => expected(r, m, bitShift));
      assert.deepEqual(Array.from(lum.pixels), want, JSON.stringify({ round, ...m, bitShift }));
      assert.equal(lum.min, Math.min(...want));
      assert.equal(lum.max, Math.max(...want));
    }
  }
});

test('8-bit and 16-bit tables with the same header values are distinct', () => {
  const m8 = module({ bitsAllocated: 8, bitsStored: 8, highBit: 7, rescaleSlope: 3 });
  const a = toLuminance(frame(Uint8Array.of(1, 2, 3, 255), m8), m8);
  assert.deepEqual(Array.from(a.pixels), [3, 6, 9, 765]);
  const m16 = module({ bitsStored: 8, highBit: 7, rescaleSlope: 3 });
  const b = toLuminance(frame(Uint16Array.of(1, 2, 0x0103, 0xffff), m16), m16);
  assert.deepEqual(Array.from(b.pixels), [3, 6, 9, 765], 'bits above BitsStored are masked off');
});

test('colour tables: RGB luma and YBR first-sample luma are cached apart', () => {
  const rgb = module({ samplesPerPixel: 3, bitsAllocated: 8, bitsStored: 8, highBit: 7, photometricInterpretation: 'RGB', columns: 2 });
  const ybr = { ...rgb, photometricInterpretation: 'YBR_FULL' as const };
  const samples = Uint8Array.of(200, 100, 50, 10, 20, 30);
  for (let i = 0; i < 2; i++) {
    const l = toLuminance(frame(samples, rgb), rgb);
    assert.deepEqual(Array.from(l.pixels), [Math.fround(0.299 * 200) + Math.fround(0.587 * 100) + Math.fround(0.114 * 50), Math.fround(0.299 * 10) + Math.fround(0.587 * 20) + Math.fround(0.114 * 30)].map(Math.fround));
    const y = toLuminance(frame(samples, ybr), ybr);
    assert.deepEqual(Array.from(y.pixels), [200, 10]);
  }
});

test('min and max come from every sample, whether the samples are 4-byte aligned or not, whatever their count', () => {
  // markPresent reads aligned samples as 32-bit words and the rest one by one: put the extreme values
  // in the word part, the tail and the first sample, at aligned and unaligned offsets.
  for (const [rows, columns] of [[3, 5], [4, 4], [1, 7], [2, 9]] as const) {
    const n = rows * columns;
    for (const place of [0, Math.floor(n / 2), n - 1]) {
      for (const bits of [8, 16] as const) {
        const m = module({ rows, columns, bitsAllocated: bits, bitsStored: bits, highBit: bits - 1, pixelRepresentation: bits === 16 ? 1 : 0 });
        const bytes = bits / 8;
        for (const offset of [0, bytes, 2 * bytes, 4]) {
          const buf = new ArrayBuffer(offset + n * bytes + 8);
          const raw = bits === 8 ? new Uint8Array(buf, offset, n) : new Int16Array(buf, offset, n);
          for (let i = 0; i < n; i++) raw[i] = bits === 8 ? 100 + (i % 7) : -50 + (i % 11);
          raw[place] = bits === 8 ? 255 : -32768;
          raw[(place + 1) % n] = bits === 8 ? 0 : 32767;
          const lum = toLuminance(frame(raw, m), m);
          const want = Array.from(raw, (r) => expected(r < 0 ? r + 65536 : r, m));
          const what = JSON.stringify({ rows, columns, place, bits, offset });
          assert.equal(lum.min, Math.min(...want), what);
          assert.equal(lum.max, Math.max(...want), what);
        }
      }
    }
  }
});
