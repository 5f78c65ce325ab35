import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { decodeImageFile, ImageFileError, readMaskFile, sniffImageFormat } from './image-file.ts';

const W = 5;
const H = 3;
const grey8 = Uint8Array.from({ length: W * H }, (_, i) => i * 17);
const grey16 = Uint16Array.from({ length: W * H }, (_, i) => i * 4000 + 7);
const rgb = Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 37) % 256);
const raw = (d: Uint8Array | Uint16Array, channels: 1 | 3) => sharp(d, { raw: { width: W, height: H, channels } });

function luma(i: number): number {
  return 0.299 * rgb[3 * i]! + 0.587 * rgb[3 * i + 1]! + 0.114 * rgb[3 * i + 2]!;
}

test('8-bit grey PNG and TIFF decode to the stored values', async () => {
  for (const [name, bytes] of [
    ['PNG', await raw(grey8, 1).toColourspace('b-w').png().toBuffer()],
    ['TIFF', await raw(grey8, 1).toColourspace('b-w').tiff({ compression: 'lzw' }).toBuffer()],
  ] as const) {
    const img = await decodeImageFile(bytes);
    assert.equal(img.rows, H);
    assert.equal(img.columns, W);
    assert.deepEqual(Array.from(img.pixels), Array.from(grey8));
    assert.equal(img.min, 0);
    assert.equal(img.max, 14 * 17);
    assert.equal(img.bitsAllocated, 8);
    assert.equal(img.samplesPerPixel, 1);
    assert.equal(img.photometricInterpretation, 'MONOCHROME2');
    assert.equal(img.transferSyntaxUid, '');
    assert.equal(img.transferSyntaxName, name);
    assert.equal(img.numberOfFrames, 1);
  }
});

test('16-bit grey PNG and TIFF keep the full range', async () => {
  for (const bytes of [
    await raw(grey16, 1).toColourspace('grey16').png().toBuffer(),
    await raw(grey16, 1).toColourspace('grey16').tiff({ compression: 'none' }).toBuffer(),
  ]) {
    const img = await decodeImageFile(bytes);
    assert.deepEqual(Array.from(img.pixels), Array.from(grey16));
    assert.equal(img.bitsAllocated, 16);
    assert.equal(img.max, 56007);
  }
});

test('RGB and RGBA become BT.601 luma', async () => {
  for (const bytes of [
    await raw(rgb, 3).png().toBuffer(),
    await raw(rgb, 3).ensureAlpha(0.5).png().toBuffer(),
    await raw(rgb, 3).tiff({ compression: 'lzw' }).toBuffer(),
  ]) {
    const img = await decodeImageFile(bytes);
    assert.equal(img.samplesPerPixel, 3);
    assert.equal(img.photometricInterpretation, 'RGB');
    for (let i = 0; i < W * H; i++) assert.ok(Math.abs(img.pixels[i]! - luma(i)) < 1e-3, `pixel ${i}`);
  }
});

test('JPEG decodes (lossy, so approximately)', async () => {
  const smooth = Uint8Array.from({ length: W * H }, (_, i) => 100 + (i % W) * 2);
  const img = await decodeImageFile(await raw(smooth, 1).toColourspace('b-w').jpeg({ quality: 100 }).toBuffer());
  assert.equal(img.transferSyntaxName, 'JPEG');
  for (let i = 0; i < W * H; i++) assert.ok(Math.abs(img.pixels[i]! - smooth[i]!) <= 2);
});

test('multi-page TIFF: first page, numberOfFrames counts pages', async () => {
  const two = new Uint8Array(W * H * 2);
  two.set(grey8);
  two.fill(200, W * H);
  const bytes = await sharp(two, { raw: { width: W, height: 2 * H, channels: 1, pageHeight: H } }).toColourspace('b-w').tiff({ compression: 'lzw' }).toBuffer();
  const img = await decodeImageFile(bytes);
  assert.equal(img.numberOfFrames, 2);
  assert.equal(img.rows, H);
  assert.deepEqual(Array.from(img.pixels), Array.from(grey8));
});

test('mask files: any nonzero sample is foreground, alpha ignored', async () => {
  const m = Uint8Array.from({ length: W * H }, (_, i) => (i % 3 === 0 ? 255 : i % 3 === 1 ? 1 : 0));
  const want = Array.from(m, (v) => (v ? 1 : 0));
  const mask = await readMaskFile(await raw(m, 1).toColourspace('b-w').tiff({ compression: 'lzw' }).toBuffer());
  assert.equal(mask.rows, H);
  assert.equal(mask.cols, W);
  assert.deepEqual(Array.from(mask.data), want);
  const colour = new Uint8Array(W * H * 3);
  for (let i = 0; i < W * H; i++) colour[3 * i + (i % 3)] = m[i]!; // foreground in different bands
  const cm = await readMaskFile(await raw(colour, 3).ensureAlpha(0).png().toBuffer());
  assert.deepEqual(Array.from(cm.data), want);
});

test('typed errors for unreadable, unsupported and oversized files', async () => {
  const png = await raw(grey8, 1).toColourspace('b-w').png().toBuffer();
  const code = (c: string) => (e: unknown) => e instanceof ImageFileError && e.code === c && !e.message.includes('\n');
  await assert.rejects(decodeImageFile(new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>')), code('UNSUPPORTED_FORMAT'));
  await assert.rejects(decodeImageFile(new Uint8Array(0)), code('UNSUPPORTED_FORMAT'));
  await assert.rejects(decodeImageFile(png.subarray(0, 40)), code('UNREADABLE_IMAGE'));
  await assert.rejects(decodeImageFile(png.subarray(0, png.length - 20)), code('UNREADABLE_IMAGE'));
  await assert.rejects(decodeImageFile(png, { maxPixels: 10 }), code('TOO_LARGE'));
  await assert.rejects(readMaskFile(Uint8Array.of(0xff, 0xd8, 0xff, 0, 1, 2)), code('UNREADABLE_IMAGE'));
  assert.equal(sniffImageFormat(png), 'PNG');
});
