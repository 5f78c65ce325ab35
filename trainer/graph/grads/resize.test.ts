import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attr, makeTensor, type Attrs } from '../builder.ts';
import { gradCheck } from './gradcheck.ts';

// onnxruntime's CPU Resize is float32 only.
async function check(attrs: Attrs, scales: number[], dims = [2, 2, 3, 4]) {
  return gradCheck({
    inputs: [{ name: 'x', dims, shape: ['N', ...dims.slice(1)] }],
    build: (g, [x]) => g.op1('Resize', [x!, null, g.constant(makeTensor('float32', [4], scales))], attrs),
    dtype: 'float32',
  });
}

test('Resize nearest x2 (asymmetric/floor, the UNet upsampling): block-sum adjoint', async () => {
  const r = await check({ mode: attr.string('nearest'), coordinate_transformation_mode: attr.string('asymmetric'), nearest_mode: attr.string('floor') }, [1, 1, 2, 2]);
  assert.deepEqual(r.failures, [], JSON.stringify(r.worst));
});

test('Resize bilinear x2 (half_pixel, PyTorch align_corners=False): matrix adjoint', async () => {
  const r = await check({ mode: attr.string('linear'), coordinate_transformation_mode: attr.string('half_pixel') }, [1, 1, 2, 2]);
  assert.deepEqual(r.failures, [], JSON.stringify(r.worst));
});

test('Resize with other geometries: linear align_corners x3, nearest half_pixel x2 with default rounding', async () => {
  const a = await check({ mode: attr.string('linear'), coordinate_transformation_mode: attr.string('align_corners') }, [1, 1, 3, 3], [1, 2, 3, 3]);
  assert.deepEqual(a.failures, [], JSON.stringify(a.worst));
  const b = await check({ mode: attr.string('nearest') }, [1, 1, 2, 2], [1, 2, 3, 3]);
  assert.deepEqual(b.failures, [], JSON.stringify(b.worst));
});
