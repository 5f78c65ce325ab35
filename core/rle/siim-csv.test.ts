import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMask } from '../mask.ts';
import { RleError } from './errors.ts';
import { decodeSiimEntry, formatSubmissionCsv, parseSiimRleCsv } from './siim-csv.ts';

test('parses the SIIM header with its leading space, -1 rows, multi-row images, CRLF and order', () => {
  const csv = 'ImageId, EncodedPixels\r\nb.2, -1\r\na.1, 2 2\r\nc.3,-1\r\na.1, 1 1\r\n\r\n';
  const t = parseSiimRleCsv(csv);
  assert.deepEqual([...t.keys()], ['b.2', 'a.1', 'c.3']);
  assert.deepEqual(t.get('b.2'), { rles: [] });
  assert.deepEqual(t.get('a.1'), { rles: ['2 2', '1 1'] });
  assert.deepEqual(t.get('c.3'), { rles: [] });
});

test('tolerates a header without the space, a BOM and no trailing newline', () => {
  const t = parseSiimRleCsv('\ufeffImageId,EncodedPixels\nx,0 3');
  assert.deepEqual(t.get('x'), { rles: ['0 3'] });
});

test('several rows of one image decode to the union of their masks', () => {
  const t = parseSiimRleCsv('ImageId, EncodedPixels\na, 0 2\na, 1 2\nb, -1\n');
  // 2x3 mask. Column-major pixels: first row {0,1}, second row gap 1 then 2 -> {1,2}; union {0,1,2},
  // i.e. all of column 0 and the top of column 1.
  const m = decodeSiimEntry(t.get('a')!, 2, 3);
  assert.deepEqual(Array.from(m.data), [1, 1, 0, 1, 0, 0]);
  assert.deepEqual(Array.from(decodeSiimEntry(t.get('b')!, 2, 3).data), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(decodeSiimEntry({ rles: ['3 1'] }, 2, 3, 'kaggle').data), [0, 1, 0, 0, 0, 0]);
});

test('malformed rows name the line', () => {
  const bad = (csv: string, re: RegExp) =>
    assert.throws(() => parseSiimRleCsv(csv), (e: unknown) => e instanceof RleError && re.test(e.message));
  bad('ImageId, EncodedPixels\na, 1 2\nb 1 2\n', /line 3: expected 2 comma-separated fields/);
  bad('ImageId, EncodedPixels\na, 1 2\nb, 1 2,3\n', /line 3: expected 2/);
  bad('ImageId, EncodedPixels\r\na, 1 x\r\n', /line 2: EncodedPixels must be/);
  bad('ImageId, EncodedPixels\na, 1 2 3\n', /line 2: .*odd number/);
  bad('ImageId, EncodedPixels\n, 1 2\n', /line 2: empty ImageId/);
  bad('Image, Pixels\na, 1 2\n', /line 1: expected header/);
  bad('', /empty file/);
});

test('an out-of-bounds RLE is reported when decoded against the image size', () => {
  const t = parseSiimRleCsv('ImageId, EncodedPixels\na, 5 2\n');
  assert.throws(() => decodeSiimEntry(t.get('a')!, 2, 3), RleError);
});

test('submission writer: -1 for empty, both encodings, and reads back', () => {
  const m = createMask(2, 2, Uint8Array.of(0, 1, 0, 1));
  const e = createMask(2, 2);
  assert.equal(formatSubmissionCsv([{ imageId: 'p', mask: m }, { imageId: 'q', mask: e }], 'kaggle'), 'ImageId,EncodedPixels\np,3 2\nq,-1\n');
  const siim = formatSubmissionCsv([{ imageId: 'p', mask: m }, { imageId: 'q', mask: e }], 'siim');
  assert.equal(siim, 'ImageId,EncodedPixels\np,2 2\nq,-1\n');
  const back = parseSiimRleCsv(siim);
  assert.deepEqual(decodeSiimEntry(back.get('p')!, 2, 2).data, m.data);
  assert.throws(() => formatSubmissionCsv([{ imageId: 'a,b', mask: m }], 'kaggle'), RangeError);
});

test('parses a 12,000-row CRLF file (one row per image, -1 and RLE rows) into 12,000 entries', () => {
  const lines = ['ImageId, EncodedPixels'];
  for (let i = 0; i < 12000; i++) lines.push(`1.2.276.0.7230010.3.1.4.8323329.${i}, ${i % 3 === 0 ? '-1' : '387620 23 996 33 986 43 977 51 968 58 962 65 956 70 952 74'}`);
  const t = parseSiimRleCsv(lines.join('\r\n'));
  assert.equal(t.size, 12000);
});
