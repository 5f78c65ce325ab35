import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makePreview, type PreviewSource } from './preview.ts';

function source(rows: number, columns: number, f: (y: number, x: number) => number, window?: PreviewSource['window']): PreviewSource {
  const pixels = new Float32Array(rows * columns);
  for (let y = 0; y < rows; y++) for (let x = 0; x < columns; x++) pixels[y * columns + x] = f(y, x);
  let min = Infinity;
  let max = -Infinity;
  for (const v of pixels) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  return window ? { rows, columns, pixels, min, max, window } : { rows, columns, pixels, min, max };
}

test('min..max maps to 0..255 without a window; the VOI window wins when present and clamps', () => {
  const ramp = source(1, 4, (_y, x) => x * 100); // 0, 100, 200, 300
  assert.deepEqual(Array.from(makePreview(ramp, 256).data), [0, 85, 170, 255]);
  const windowed = source(1, 4, (_y, x) => x * 100, { center: 150, width: 100 }); // 100..200
  assert.deepEqual(Array.from(makePreview(windowed, 256).data), [0, 0, 255, 255]);
  const flat = source(2, 2, () => 7);
  assert.deepEqual(Array.from(makePreview(flat, 256).data), [0, 0, 0, 0], 'a constant image is black, not NaN');
});

test('box-filters down to maxSide on the longer side, keeps the aspect ratio, never enlarges', () => {
  // 4x8 blocks of 2x2: each output pixel is the mean of one block.
  const img = source(4, 8, (y, x) => ((y >> 1) * 4 + (x >> 1)) * 10);
  const p = makePreview(img, 4);
  assert.deepEqual([p.width, p.height], [4, 2]);
  const span = img.max - img.min;
  const blocks = [0, 10, 20, 30, 40, 50, 60, 70].map((v) => Math.round((v / span) * 255));
  assert.deepEqual(Array.from(p.data), blocks);
  const same = makePreview(img, 1000);
  assert.deepEqual([same.width, same.height], [8, 4]);
  const odd = makePreview(source(300, 200, (y, x) => y + x), 64);
  assert.deepEqual([odd.width, odd.height], [43, 64]);
});

test('an image not shrunk gives the same bytes as the box filter with one-pixel boxes', () => {
  // The definition with one-pixel boxes: round(clamp((p - lo) / span * 255)).
  const img = source(37, 23, (y, x) => Math.sin(y * 0.7 + x * 0.3) * 900 + x, { center: 100, width: 1200 });
  const p = makePreview(img, 37);
  assert.deepEqual([p.width, p.height], [23, 37]);
  const lo = 100 - 600;
  const want = Array.from(img.pixels, (v) => {
    const t = ((v - lo) / 1200) * 255;
    return t <= 0 ? 0 : t >= 255 ? 255 : Math.round(t);
  });
  assert.deepEqual(Array.from(p.data), want);
});

/** The box filter as first written: each box summed pixel by pixel (row by row). */
function referencePreview(img: PreviewSource, maxSide: number): Uint8Array {
  const scale = Math.min(1, maxSide / Math.max(img.rows, img.columns));
  const width = Math.max(1, Math.round(img.columns * scale));
  const height = Math.max(1, Math.round(img.rows * scale));
  const [lo, hi] = img.window && img.window.width > 0 ? [img.window.center - img.window.width / 2, img.window.center + img.window.width / 2] : [img.min, img.max];
  const span = hi > lo ? hi - lo : 1;
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const y0 = Math.floor((y * img.rows) / height);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * img.rows) / height));
    for (let x = 0; x < width; x++) {
      const x0 = Math.floor((x * img.columns) / width);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * img.columns) / width));
      let sum = 0;
      for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) sum += img.pixels[yy * img.columns + xx]!;
      const v = ((sum / ((y1 - y0) * (x1 - x0)) - lo) / span) * 255;
      out[y * width + x] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return out;
}

test('column-sum box filter equals the pixel-by-pixel box mean (exactly for integer-valued images)', () => {
  const shapes: Array<[number, number, number]> = [[300, 200, 64], [1024, 1024, 256], [97, 131, 50], [512, 512, 256], [5, 700, 100]];
  for (const [rows, cols, side] of shapes) {
    // Stored values after an integer rescale are integers: float64 sums are exact in any order.
    const ints = source(rows, cols, (y, x) => ((y * 131 + x * 71) % 4096) - 1024, { center: 500, width: 3000 });
    assert.deepEqual(makePreview(ints, side).data, referencePreview(ints, side), `${rows}x${cols} -> ${side}`);
    // Fractional values (slope 0.37): summation order may move a value across a rounding edge by 1e-13.
    const frac = source(rows, cols, (y, x) => Math.fround((((y * 131 + x * 71) % 4096) - 1024) * 0.37));
    const a = makePreview(frac, side).data;
    const b = referencePreview(frac, side);
    let differ = 0;
    for (let i = 0; i < a.length; i++) {
      assert.ok(Math.abs(a[i]! - b[i]!) <= 1);
      if (a[i] !== b[i]) differ++;
    }
    assert.ok(differ <= a.length * 1e-3, `${differ} of ${a.length} bytes differ`);
  }
});

test('a decoded image left as samples + table previews exactly as its float image, without making it', async () => {
  const { decodeDicom } = await import('../dicom/decode.ts');
  const { newUid, writeDicom } = await import('../dicom/write.ts');
  const px = Uint16Array.from({ length: 300 * 211 }, (_, i) => (i * 7919) % 4096);
  const img = await decodeDicom(writeDicom({ rows: 300, columns: 211, bitsAllocated: 16, bitsStored: 12, pixels: px, sopInstanceUid: newUid(), windowCenter: 1800, windowWidth: 2400 }));
  assert.ok(img.samples);
  // The float image must not be read: a source whose `pixels` throws.
  const tableOnly: PreviewSource = {
    rows: img.rows,
    columns: img.columns,
    min: img.min,
    max: img.max,
    window: img.window!,
    samples: img.samples,
    get pixels(): Float32Array {
      throw new Error('pixels read');
    },
  };
  const viaTable = [makePreview(tableOnly, 64), makePreview(tableOnly, 256), makePreview(tableOnly, 1000)];
  const eager = { rows: img.rows, columns: img.columns, pixels: Float32Array.from(img.pixels), min: img.min, max: img.max, window: img.window! };
  assert.deepEqual(viaTable, [makePreview(eager, 64), makePreview(eager, 256), makePreview(eager, 1000)]);
});
