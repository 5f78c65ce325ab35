import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createMask, masksEqual, type Mask } from '../mask.ts';
import { decodeMask, encodeMask, RLE_FORMATS, RleError, cocoCountsToString, cocoStringToCounts } from './index.ts';

/** Build a mask from row strings like '0110'. */
function maskOf(...rowStrings: string[]): Mask {
  const rows = rowStrings.length;
  const cols = rowStrings[0]!.length;
  return createMask(rows, cols, Uint8Array.from(rowStrings.join(''), (ch) => (ch === '1' ? 1 : 0)));
}

const example = maskOf('0110', '0101', '1100');

test('worked example 3x4: every format encodes to the documented string', () => {
  assert.equal(encodeMask(example, 'kaggle'), '3 5 11 1');
  assert.equal(encodeMask(example, 'siim'), '2 5 3 1');
  assert.deepEqual(encodeMask(example, 'coco'), [2, 5, 3, 1, 1]);
  assert.equal(encodeMask(example, 'coco-compressed'), '253LN');
});

test('worked example 3x4: every format decodes back to the mask', () => {
  assert.ok(masksEqual(decodeMask('3 5 11 1', 'kaggle', 3, 4), example));
  assert.ok(masksEqual(decodeMask('2 5 3 1', 'siim', 3, 4), example));
  assert.ok(masksEqual(decodeMask([2, 5, 3, 1, 1], 'coco', 3, 4), example));
  assert.ok(masksEqual(decodeMask('253LN', 'coco-compressed', 3, 4), example));
});

test('coco: full and empty 2x2, and the delta-coded long example', () => {
  const full = maskOf('11', '11');
  const empty = maskOf('00', '00');
  assert.deepEqual(encodeMask(full, 'coco'), [0, 4]);
  assert.equal(encodeMask(full, 'coco-compressed'), '04');
  assert.deepEqual(encodeMask(empty, 'coco'), [4]);
  assert.equal(encodeMask(empty, 'coco-compressed'), '4');
  assert.equal(cocoCountsToString([1000, 50, 3000, 20, 6000]), 'Xo0b1hm2ROhm2');
  assert.deepEqual(cocoStringToCounts('Xo0b1hm2ROhm2'), [1000, 50, 3000, 20, 6000]);
  // 10070 pixels: the example is a valid mask of 10070 x 1.
  const m = decodeMask('Xo0b1hm2ROhm2', 'coco-compressed', 10070, 1);
  assert.equal(m.data.reduce((a, b) => a + b, 0), 70);
  assert.equal(m.data[1000], 1);
  assert.equal(m.data[999], 0);
  assert.equal(m.data[1049], 1);
  assert.equal(m.data[1050], 0);
});

test('empty masks: kaggle and siim give "", decoders accept "" and -1', () => {
  const empty = createMask(5, 7);
  assert.equal(encodeMask(empty, 'kaggle'), '');
  assert.equal(encodeMask(empty, 'siim'), '');
  for (const f of ['kaggle', 'siim'] as const) {
    assert.ok(masksEqual(decodeMask('', f, 5, 7), empty));
    assert.ok(masksEqual(decodeMask(' -1 ', f, 5, 7), empty));
  }
});

test('siim: a run touching the last pixel and values other than 255 are kept (the two original bugs)', () => {
  const m = createMask(2, 2, Uint8Array.of(0, 7, 0, 1)); // column 1 fully set, ends at last pixel
  assert.equal(encodeMask(m, 'siim'), '2 2');
  assert.equal(encodeMask(m, 'kaggle'), '3 2');
  assert.deepEqual(Array.from(decodeMask('2 2', 'siim', 2, 2).data), [0, 1, 0, 1]);
});

test('a run crossing a column boundary is a single run', () => {
  // column-major sequence 0 0 1 | 1 0 0 for a 3x2 mask: rows '01','00','10'
  const m = maskOf('01', '00', '10');
  assert.equal(encodeMask(m, 'kaggle'), '3 2');
  assert.deepEqual(encodeMask(m, 'coco'), [2, 2, 2]);
});

function expectRle(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RleError, `expected RleError, got ${String(e)}`);
    assert.equal(e.code, 'INVALID_RLE');
    assert.doesNotMatch(e.message, /\n/);
    assert.match(e.message, pattern);
    return true;
  });
}

test('kaggle validation', () => {
  expectRle(() => decodeMask('3 5 11', 'kaggle', 3, 4), /odd number/);
  expectRle(() => decodeMask('3 5 11 3', 'kaggle', 3, 4), /past the last pixel/);
  expectRle(() => decodeMask('0 1', 'kaggle', 3, 4), /start at 1/);
  expectRle(() => decodeMask('3 0', 'kaggle', 3, 4), /length 0/);
  expectRle(() => decodeMask('5 2 3 1', 'kaggle', 3, 4), /overlaps or precedes/);
  expectRle(() => decodeMask('3 5 6 1', 'kaggle', 3, 4), /overlaps or precedes/);
  expectRle(() => decodeMask('3 5.0', 'kaggle', 3, 4), /not a non-negative integer/);
  expectRle(() => decodeMask('3 -5', 'kaggle', 3, 4), /negative/);
  expectRle(() => decodeMask('3 x', 'kaggle', 3, 4), /"x"/);
  expectRle(() => decodeMask('1e1 1', 'kaggle', 3, 4), /not a non-negative integer/);
  // Touching runs are not overlapping: accepted and merged.
  assert.deepEqual(Array.from(decodeMask('1 2 3 1', 'kaggle', 1, 4).data), [1, 1, 1, 0]);
});

test('siim validation', () => {
  expectRle(() => decodeMask('2 5 3', 'siim', 3, 4), /odd number/);
  expectRle(() => decodeMask('2 5 3 3', 'siim', 3, 4), /past the last pixel/);
  expectRle(() => decodeMask('2 0', 'siim', 3, 4), /length 0/);
  expectRle(() => decodeMask('2 -5', 'siim', 3, 4), /negative/);
  expectRle(() => decodeMask('2,5', 'siim', 3, 4), /not a non-negative integer/);
});

test('coco validation', () => {
  expectRle(() => decodeMask([2, 5, 3, 1], 'coco', 3, 4), /sum to 11, expected 3x4=12/);
  expectRle(() => decodeMask([2, 5, 3, 1, 2], 'coco', 3, 4), /past the last pixel/);
  expectRle(() => decodeMask([2, 5.5, 3, 1, 0.5], 'coco', 3, 4), /not a non-negative integer/);
  expectRle(() => decodeMask([2, -1, 11], 'coco', 3, 4), /not a non-negative integer/);
  expectRle(() => decodeMask('2 5 3 1 1', 'coco', 3, 4), /array/);
  expectRle(() => decodeMask([2, 5, 3, 1, 1] as unknown as string, 'kaggle', 3, 4), /must be a string/);
  // pycocotools accepts a zero count inside; it only merges neighbouring runs.
  assert.ok(masksEqual(decodeMask([2, 3, 0, 2, 3, 1, 1], 'coco', 3, 4), example));
});

test('coco-compressed validation', () => {
  expectRle(() => decodeMask('253LN!', 'coco-compressed', 3, 4), /invalid character "!" at position 6/);
  expectRle(() => decodeMask('253Lp', 'coco-compressed', 3, 4), /invalid character/);
  expectRle(() => decodeMask('253LNX', 'coco-compressed', 3, 4), /truncated/);
  expectRle(() => decodeMask('253L', 'coco-compressed', 3, 4), /coco-compressed RLE: counts sum to 11/);
  expectRle(() => decodeMask('2O', 'coco-compressed', 3, 4), /not a non-negative integer|non-negative/);
  expectRle(() => decodeMask('253LNooooooooooo', 'coco-compressed', 3, 4), /too long/);
});

test('size and format arguments are validated', () => {
  expectRle(() => decodeMask('', 'kaggle', -1, 4), /invalid mask size/);
  expectRle(() => decodeMask('', 'kaggle', 2.5, 4), /invalid mask size/);
  expectRle(() => decodeMask('', 'rle' as never, 2, 4), /unknown RLE format/);
});

test('degenerate 0-pixel masks round-trip', () => {
  const m = createMask(0, 5);
  for (const f of RLE_FORMATS) assert.ok(masksEqual(decodeMask(encodeMask(m, f), f, 0, 5), m));
  assert.deepEqual(encodeMask(m, 'coco'), [0]);
});

// Random masks: fully random, all-zero, all-one, and blocky (long runs), on shapes including 1xN and Nx1.
const arbMask: fc.Arbitrary<Mask> = fc
  .record({ rows: fc.integer({ min: 1, max: 40 }), cols: fc.integer({ min: 1, max: 40 }), kind: fc.constantFrom('random', 'zero', 'one', 'blocky'), seed: fc.integer() })
  .chain(({ rows, cols, kind, seed }) => {
    if (kind === 'zero') return fc.constant(createMask(rows, cols));
    if (kind === 'one') return fc.constant(createMask(rows, cols, new Uint8Array(rows * cols).fill(1)));
    if (kind === 'random') return fc.uint8Array({ minLength: rows * cols, maxLength: rows * cols }).map((d) => createMask(rows, cols, d.map((v) => (v & 1 ? 1 : 0))));
    return fc.constant(null).map(() => {
      let s = seed >>> 0;
      const d = new Uint8Array(rows * cols);
      let v = 0;
      for (let i = 0; i < d.length; i++) {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        if (s % 7 === 0) v ^= 1;
        d[i] = v;
      }
      return createMask(rows, cols, d);
    });
  });

test('property: decode(encode(m)) == m for every format', () => {
  fc.assert(
    fc.property(arbMask, fc.constantFrom(...RLE_FORMATS), (m, f) => {
      const back = decodeMask(encodeMask(m, f), f, m.rows, m.cols);
      assert.ok(masksEqual(back, m));
      assert.ok(back.data.every((v) => v === 0 || v === 1));
    }),
    { numRuns: 600 },
  );
});

test('property: the four encodings of a mask decode to the same mask; nonzero counts as foreground', () => {
  fc.assert(
    fc.property(arbMask, fc.integer({ min: 1, max: 255 }), (m, fg) => {
      const scaled = createMask(m.rows, m.cols, m.data.map((v) => (v ? fg : 0)));
      const decoded = RLE_FORMATS.map((f) => decodeMask(encodeMask(scaled, f), f, m.rows, m.cols));
      for (const d of decoded) assert.deepEqual(d.data, m.data);
      // The formats agree on the runs themselves: kaggle absolute starts == siim cumulative positions.
      const k = (encodeMask(m, 'kaggle') as string).split(' ').filter(Boolean).map(Number);
      const s = (encodeMask(m, 'siim') as string).split(' ').filter(Boolean).map(Number);
      let end = 0;
      for (let i = 0; i < k.length; i += 2) {
        assert.equal(k[i]! - 1, end + s[i]!);
        assert.equal(k[i + 1], s[i + 1]);
        end = k[i]! - 1 + k[i + 1]!;
      }
    }),
    { numRuns: 400 },
  );
});

test('property: coco string codec round-trips arbitrary counts, including large ones', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 2 ** 32 }), { maxLength: 30 }), (counts) => {
      assert.deepEqual(cocoStringToCounts(cocoCountsToString(counts)), counts);
    }),
    { numRuns: 500 },
  );
});

test('a 1024x1024 blob round-trips through every format', () => {
  const n = 1024;
  const d = new Uint8Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if ((c - 400) ** 2 / 180 ** 2 + (r - 600) ** 2 / 120 ** 2 < 1) d[r * n + c] = 1;
  d[n * n - 1] = 1; // a run at the very last pixel
  const m = createMask(n, n, d);
  for (const f of RLE_FORMATS) assert.ok(masksEqual(decodeMask(encodeMask(m, f), f, n, n), m), f);
});

test('a mask whose pixels are a view at any byte offset encodes as its copy (unaligned views were a RangeError)', () => {
  for (const offset of [0, 1, 2, 3]) {
    const data = new Uint8Array(offset + 35).subarray(offset);
    for (const i of [0, 4, 5, 17, 33, 34]) data[i] = 1;
    const view = createMask(5, 7, data);
    const copy = createMask(5, 7, data.slice());
    for (const f of RLE_FORMATS) assert.deepEqual(encodeMask(view, f), encodeMask(copy, f), `${f} at offset ${offset}`);
  }
});
