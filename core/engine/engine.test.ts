import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeDicom } from '../dicom/decode.ts';
import { DicomError } from '../dicom/errors.ts';
import { masksEqual, maskArea } from '../mask.ts';
import { chestDicom } from '../../synth/index.ts';
import { makeModelRepository } from '../../test/helpers/model-fixture.ts';
import { InvalidRequestError, ModelInvalidError, ModelNotFoundError, NotReadyError } from './errors.ts';
import { maskStats } from '../segmentation/postprocess.ts';
import { makePreview } from './preview.ts';
import { startEngine, type EngineFixture } from './testing/engine-fixtures.ts';
import type { ModelManifest } from '../manifest.ts';
import {
  assertMatchesReference,
  assertPartialAsymmetric,
  partialThreshold,
  referenceMask,
  referenceProbabilities,
  releaseReferenceSessions,
  type Reference,
} from './testing/reference.ts';

let fx: EngineFixture;
let dicom: Uint8Array;

before(async () => {
  dicom = (await chestDicom(7, { size: 256, lesions: 1 })).bytes;
  fx = await startEngine(
    [
      { name: 'unet', version: '2', size: 64, seed: 2 },
      { name: 'unet', version: '10', size: 64, seed: 10, minArea: 0 },
      { name: 'unet', version: '1', size: 32, seed: 1 },
      // A PyTorch-style export: names from the manifest, never hard-coded.
      { name: 'torch', version: '1', size: 32, ioNames: { input: 'input', output: 'logits' } },
      // A manifest that disagrees with its graph: not ready, the error names the mismatch.
      { name: 'broken', version: '1', size: 32, editManifest: (m) => (m.input.name = 'pixels') },
    ],
    { provider: 'cuda', defaultModel: 'unet' },
  );
});

after(async () => {
  await fx?.cleanup();
  await releaseReferenceSessions();
});

/** The independent reference (testing/reference.ts) for `dicom` through the default model, unet:10. */
async function unetReference(tta: boolean): Promise<Reference> {
  const dir = join(fx.dir, 'unet', '10');
  const manifest = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as ModelManifest;
  return referenceProbabilities(join(dir, 'model.onnx'), manifest, dicom, { tta });
}

test('serves the newest version of each model; CUDA on a CPU-only machine falls back to CPU with one warning per model', () => {
  assert.equal(fx.engine.ready(), true);
  const unet = fx.engine.model('unet')!;
  assert.equal(unet.version, '10', 'numeric ordering: 10 > 2');
  assert.deepEqual(unet.versions, ['1', '2', '10']);
  assert.equal(unet.ready, true);
  assert.ok(!Number.isNaN(Date.parse(unet.loadedAt)));
  assert.equal(fx.engine.defaultModel()?.name, 'unet');
  const warnings = fx.lines.filter((l) => l.level === 40 && /CUDA unavailable/.test(l.msg));
  if (unet.executionProvider === 'cpu') {
    assert.deepEqual(warnings.map((w) => w.model).sort(), ['torch:1', 'unet:10'], 'one warning per loaded model, not per worker');
    assert.match(String(warnings[0]!.reason), /CUDA session on device 0 could not be created/);
  } else {
    assert.equal(warnings.length, 0);
  }
  assert.equal(fx.engine.model('torch')!.ready, true);
});

test('a model whose graph does not match its manifest is listed as not ready, with the mismatch named', () => {
  const broken = fx.engine.model('broken')!;
  assert.equal(broken.ready, false);
  assert.equal(broken.executionProvider, null);
  assert.match(broken.error ?? '', /manifest input 'pixels' is not an input of the ONNX graph \(inputs: 'image'\)/);
  assert.ok(fx.engine.models().some((m) => m.name === 'broken' && !m.ready));
});

test('segment(): masks at the original size, consistent area/bbox, deterministic across calls', async () => {
  const a = await fx.engine.segment({ dicom });
  assert.deepEqual(a.model, { name: 'unet', version: '10', executionProvider: fx.engine.model('unet')!.executionProvider });
  assert.equal(a.image.rows, 256);
  assert.equal(a.image.columns, 256);
  assert.equal(a.image.frame, 0);
  assert.equal(a.image.numberOfFrames, 1);
  assert.equal(a.image.modality, 'CR');
  assert.match(a.image.sopInstanceUid ?? '', /^2\.25\./);
  assert.equal(a.masks.length, 1);
  const m = a.masks[0]!;
  assert.equal(m.label, 'pneumothorax');
  assert.equal(m.mask.rows, 256);
  assert.equal(m.mask.cols, 256);
  assert.ok(m.mask.data.every((v) => v === 0 || v === 1));
  assert.equal(m.area, maskArea(m.mask));
  assert.deepEqual(m.bbox, maskStats(m.mask).bbox);
  assert.equal(m.empty, m.area === 0);
  assert.equal(m.threshold, 0.5);
  for (const [k, v] of Object.entries(a.timings)) assert.ok(Number.isFinite(v) && v >= 0, `${k} = ${v}`);
  assert.ok(a.timings.totalMs >= a.timings.inferenceMs);

  const b = await fx.engine.segment({ dicom });
  assert.ok(masksEqual(a.masks[0]!.mask, b.masks[0]!.mask), 'same input, same mask');
  assert.equal(a.masks[0]!.area, b.masks[0]!.area);
  assert.notEqual(dicom.byteLength, 0, 'the caller keeps its bytes (copied, not transferred, by default)');

  // A Buffer viewing part of a larger allocation (as an HTTP body can): neither detached nor changed.
  const arena = Buffer.alloc(dicom.length + 64, 7);
  const view = arena.subarray(32, 32 + dicom.length);
  dicom.forEach((v, i) => (view[i] = v));
  const c = await fx.engine.segment({ dicom: view });
  assert.ok(masksEqual(a.masks[0]!.mask, c.masks[0]!.mask));
  assert.equal(arena.buffer.byteLength, dicom.length + 64);
  assert.deepEqual(new Uint8Array(view), dicom);
  assert.equal(arena[0], 7);
});

test('threshold and min-area overrides change the mask as documented (partial masks, checked against the reference pipeline)', async () => {
  const ref = await unetReference(false);
  // Two thresholds that both leave partial masks: the median probability and one a little above it.
  const lowT = partialThreshold([ref]);
  const highT = Math.round((lowT + 0.02) * 1000) / 1000;
  const low = await fx.engine.segment({ dicom, threshold: lowT });
  const high = await fx.engine.segment({ dicom, threshold: highT });
  for (const [r, t] of [[low, lowT], [high, highT]] as const) {
    assertPartialAsymmetric(referenceMask(ref, t).data, ref.rows, ref.cols, `reference at threshold ${t}`);
    assertMatchesReference(r.masks[0]!.mask, ref, t, `threshold ${t}`);
    assert.equal(r.masks[0]!.threshold, t);
  }
  assert.ok(low.masks[0]!.area > high.masks[0]!.area, `a lower threshold gives a larger mask (${low.masks[0]!.area} vs ${high.masks[0]!.area})`);
  const area = low.masks[0]!.area;
  const gated = await fx.engine.segment({ dicom, threshold: lowT, minArea: area + 1 });
  assert.equal(gated.masks[0]!.empty, true);
  assert.equal(gated.masks[0]!.area, 0);
  assert.equal(gated.masks[0]!.bbox, null);
  assert.equal(gated.masks[0]!.minArea, area + 1);
  const kept = await fx.engine.segment({ dicom, threshold: lowT, minArea: area });
  assert.equal(kept.masks[0]!.area, area, 'a mask of exactly minArea pixels is kept');
  assert.ok(masksEqual(kept.masks[0]!.mask, low.masks[0]!.mask));
});

test('preview: made in the worker from its own decode, equal to makePreview of the decoded frame; only when asked', async () => {
  const plain = await fx.engine.segment({ dicom });
  assert.equal(plain.preview, undefined, 'no preview unless asked for');
  const r = await fx.engine.segment({ dicom, preview: { maxSide: 100 } });
  const want = makePreview(await decodeDicom(dicom), 100);
  assert.deepEqual([r.preview?.width, r.preview?.height], [100, 100]);
  assert.deepEqual(r.preview!.data, want.data);
  assert.ok(masksEqual(r.masks[0]!.mask, plain.masks[0]!.mask), 'asking for a preview does not change the masks');
  await assert.rejects(fx.engine.segment({ dicom, preview: { maxSide: 0 } }), (e: unknown) => e instanceof InvalidRequestError && e.field === 'preview');
  await assert.rejects(fx.engine.segment({ dicom, preview: { maxSide: 1.5 } }), (e: unknown) => e instanceof InvalidRequestError && e.field === 'preview');
});

test('TTA runs the flipped image in the same batch and averages its output, flipped back, with the original', async () => {
  const ref = await unetReference(true);
  const threshold = partialThreshold([ref]);
  assertPartialAsymmetric(referenceMask(ref, threshold).data, ref.rows, ref.cols, 'TTA reference');
  const before = fx.batches.length;
  const r = await fx.engine.segment({ dicom, tta: true, threshold });
  assert.equal(r.masks[0]!.mask.rows, 256);
  assert.ok(fx.batches.slice(before).includes(2), `a batch of 2 images ran (batches: ${fx.batches.slice(before)})`);
  // The reference un-flips the flipped image's probabilities itself: an output left flipped, or the
  // original counted twice, differs from it in thousands of pixels at this threshold.
  assertMatchesReference(r.masks[0]!.mask, ref, threshold, 'TTA mask');
  const plain = await fx.engine.segment({ dicom, threshold });
  assert.ok(!masksEqual(r.masks[0]!.mask, plain.masks[0]!.mask), 'TTA changes the mask (so the check above is not the plain mask)');
  const again = await fx.engine.segment({ dicom, tta: true, threshold });
  assert.ok(masksEqual(r.masks[0]!.mask, again.masks[0]!.mask));
});

test('name:version addressing loads an older version on demand; a PyTorch-named model serves', async () => {
  const before = fx.engine.model('unet', '1')!;
  assert.equal(before.version, '1');
  assert.equal(before.manifest?.version, '1', 'the listing shows that version\'s own manifest');
  assert.deepEqual(before.manifest?.input.shape, ['N', 1, 32, 32]);
  assert.equal(before.ready, false);
  assert.equal(fx.engine.model('unet', '7'), undefined);
  const r = await fx.engine.segment({ dicom, model: 'unet', version: '1' });
  assert.equal(r.model.version, '1');
  assert.equal(fx.engine.model('unet', '1')!.ready, true);
  assert.equal(fx.engine.model('unet')!.version, '10', 'the default stays the newest');
  const t = await fx.engine.segment({ dicom, model: 'torch' });
  assert.equal(t.model.name, 'torch');
  assert.equal(t.masks[0]!.mask.rows, 256);
});

test('typed errors: unknown model/version, bad overrides, not-ready model; DicomError passes through', async () => {
  await assert.rejects(fx.engine.segment({ dicom, model: 'nope' }), ModelNotFoundError);
  await assert.rejects(fx.engine.segment({ dicom, model: 'unet', version: '99' }), (e: unknown) => e instanceof ModelNotFoundError && /available versions: 1, 2, 10/.test(e.message));
  await assert.rejects(fx.engine.segment({ dicom, threshold: 1.5 }), (e: unknown) => e instanceof InvalidRequestError && e.field === 'threshold');
  await assert.rejects(fx.engine.segment({ dicom, threshold: 0 }), InvalidRequestError);
  await assert.rejects(fx.engine.segment({ dicom, minArea: -1 }), (e: unknown) => e instanceof InvalidRequestError && e.field === 'minArea');
  await assert.rejects(fx.engine.segment({ dicom, frame: -1 }), (e: unknown) => e instanceof InvalidRequestError && e.field === 'frame');
  // A model that failed to load is the model's fault, not a passing state: 409 MODEL_INVALID naming it (not 503 NOT_READY).
  await assert.rejects(fx.engine.segment({ dicom, model: 'broken' }), (e: unknown) => e instanceof ModelInvalidError && e.status === 409 && /broken:1/.test(e.message) && /pixels/.test(e.message));
  await assert.rejects(fx.engine.segment({ dicom: new TextEncoder().encode('certainly not a DICOM file, just text') }), (e: unknown) => {
    assert.ok(e instanceof DicomError, `got ${String(e)}`);
    assert.equal(e.code, 'NOT_DICOM');
    return true;
  });
  await assert.rejects(fx.engine.segment({ dicom, frame: 5 }), (e: unknown) => e instanceof DicomError && e.code === 'FRAME_OUT_OF_RANGE');
  assert.equal(fx.engine.queueDepth(), 0, 'failed requests give back their queue slots');
});

test('reload(): a new version takes over, a broken one keeps the old serving, a removed model goes away', async () => {
  await makeModelRepository(fx.dir, [{ name: 'unet', version: '11', size: 64, seed: 11 }]);
  const r1 = await fx.engine.reload();
  assert.deepEqual(r1.loaded, ['unet:11']);
  assert.deepEqual(r1.failed, [{ model: 'broken:1', error: r1.failed[0]!.error }]);
  assert.equal(fx.engine.model('unet')!.version, '11');
  assert.ok(r1.removed.includes('unet:10'));
  assert.equal((await fx.engine.segment({ dicom })).model.version, '11');

  await makeModelRepository(fx.dir, [{ name: 'unet', version: '12', size: 64, replaceOnnx: new Uint8Array([0, 1, 2]) }]);
  const r2 = await fx.engine.reload();
  assert.deepEqual(r2.loaded, []);
  assert.equal(r2.failed.find((f) => f.model === 'unet:12')?.error.includes('sha256 mismatch'), true);
  assert.equal(fx.engine.model('unet')!.version, '11', 'the old version keeps serving');
  assert.match(fx.engine.model('unet')!.error ?? '', /unet:12: sha256 mismatch/);
  assert.equal((await fx.engine.segment({ dicom })).model.version, '11');

  // The served version's directory disappears: the next newest loadable version takes over.
  await rm(join(fx.dir, 'unet', '11'), { recursive: true });
  const r4 = await fx.engine.reload();
  assert.ok(r4.removed.includes('unet:11'));
  assert.equal(fx.engine.model('unet')!.version, '10');
  assert.equal((await fx.engine.segment({ dicom })).model.version, '10');

  await rm(join(fx.dir, 'torch'), { recursive: true });
  const r3 = await fx.engine.reload();
  assert.ok(r3.removed.includes('torch:1'));
  assert.equal(fx.engine.model('torch'), undefined);
  await assert.rejects(fx.engine.segment({ dicom, model: 'torch' }), ModelNotFoundError);
});
