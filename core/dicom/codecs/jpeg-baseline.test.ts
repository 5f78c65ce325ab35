import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';

/**
 * The single-component decode (toColourspace('b-w')) gives exactly the bytes of the former call
 * (extractChannel(0), which went through sRGB and back), for every 8-bit level, several qualities
 * and sizes, one channel out.
 */
test("1-component JPEG: 'b-w' output equals the former extractChannel(0) byte for byte", async () => {
  for (const quality of [40, 90, 100]) {
    for (const size of [8, 255, 512]) {
      const px = new Uint8Array(size * size).map((_, i) => (i * 37 + (i >> 5)) & 255);
      const jpeg = await sharp(px, { raw: { width: size, height: size, channels: 1 } }).toColourspace('b-w').jpeg({ quality, mozjpeg: false }).toBuffer();
      const before = await sharp(jpeg, { failOn: 'warning' }).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
      const after = await sharp(jpeg, { failOn: 'warning' }).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
      assert.equal(after.info.channels, 1);
      assert.equal(after.info.width, size);
      assert.ok(after.data.equals(before.data), `q${quality} ${size}x${size}`);
      if (size >= 255) assert.equal(new Set(after.data).size, 256, 'every level occurs');
    }
  }
});
