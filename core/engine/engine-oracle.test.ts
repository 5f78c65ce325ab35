/**
 * The served mask against an independent pipeline (testing/reference.ts: decode -> toTensor -> a
 * plain ORT session per image -> float64 sigmoid -> the test's own TTA flip/un-flip and bilinear
 * upsampling -> threshold), for three DIFFERENT images of different sizes sent as one batch, one of
 * them with TTA, through a model with a symbolic batch and one with a fixed batch (padded runs).
 * The threshold is picked from the reference probabilities so every mask is partial and asymmetric:
 * outputs handed to the wrong request, a TTA output left flipped, a misaligned resample or a wrong
 * padding slot all change pixels far from the threshold.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chestDicom } from '../../synth/index.ts';
import type { ModelManifest } from '../manifest.ts';
import type { FixtureModel } from '../../test/helpers/model-fixture.ts';
import { startEngine, type EngineFixture } from './testing/engine-fixtures.ts';
import {
  assertMatchesReference,
  assertPartialAsymmetric,
  partialThreshold,
  referenceMask,
  referenceProbabilities,
  releaseReferenceSessions,
  type Reference,
} from './testing/reference.ts';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';

/** A: 256 px with TTA (enlarged 4x), B: the model's own size (no resampling), C: 160 px (2.5x). */
const IMAGES = [
  { name: 'A', tta: true, dicom: (await chestDicom(11, { size: 256, lesions: 2 })).bytes },
  { name: 'B', tta: false, dicom: (await chestDicom(23, { size: 64, lesions: 1 })).bytes },
  { name: 'C', tta: false, dicom: (await chestDicom(37, { size: 160, lesions: 0 })).bytes },
] as const;

after(releaseReferenceSessions);

for (const variant of [
  { title: 'symbolic batch (N)', model: { name: 'unet', version: '1', size: 64, seed: 5 } satisfies FixtureModel },
  { title: 'fixed batch of 4 (every run padded to 4)', model: { name: 'unet', version: '1', size: 64, seed: 5, fixedBatch: 4 } satisfies FixtureModel },
  // A at 4x (block means through the sample table), C at 2.5x (overlap weights).
  { title: "a model pinning the 'area' resize", model: { name: 'unet', version: '1', size: 64, seed: 5, resize: 'area' } satisfies FixtureModel },
]) {
  describe(`served masks equal the reference pipeline: ${variant.title}`, () => {
    let fx: EngineFixture;
    let manifest: ModelManifest;
    let refs: Map<string, Reference>;
    let threshold: number;

    before(async () => {
      // One worker and a long batch delay: requests admitted together wait for each other.
      fx = await startEngine([variant.model], { workers: 1, maxBatch: 4, maxDelayMs: 5000 });
      const dir = join(fx.dir, 'unet', '1');
      manifest = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as ModelManifest;
      assert.equal(manifest.input.shape[0], variant.model.fixedBatch ?? 'N');
      refs = new Map();
      for (const im of IMAGES) refs.set(im.name, await referenceProbabilities(join(dir, 'model.onnx'), manifest, im.dicom, { tta: im.tta }));
      if (variant.model.resize === 'area') {
        // The variant only tests something if the method changes the model's input.
        const onnx = join(dir, 'model.onnx');
        const bilinear = await referenceProbabilities(onnx, { ...manifest, preprocessing: { ...manifest.preprocessing, resize: 'bilinear' } }, IMAGES[0].dicom);
        assert.notDeepEqual((await referenceProbabilities(onnx, manifest, IMAGES[0].dicom)).modelProbs, bilinear.modelProbs);
      }
      threshold = partialThreshold([...refs.values()]);
      for (const im of IMAGES) {
        const r = refs.get(im.name)!;
        assertPartialAsymmetric(referenceMask(r, threshold).data, r.rows, r.cols, `reference ${im.name} at ${threshold}`);
      }
    });

    after(async () => {
      await fx?.cleanup();
    });

    const send = (names: string[]) =>
      Promise.all(
        names.map((n) => {
          const im = IMAGES.find((i) => i.name === n)!;
          return fx.engine.segment({ dicom: im.dicom, tta: im.tta, threshold });
        }),
      );

    test('A (with TTA), B and C in ONE batch of 4 images: each gets its own reference mask', async () => {
      fx.batches.length = 0;
      const rs = await send(['A', 'B', 'C']);
      assert.deepEqual(fx.batches, [4], 'the three requests ran as one batch of 4 images');
      rs.forEach((r, i) => {
        const name = IMAGES[i]!.name;
        assert.equal(r.masks[0]!.threshold, threshold);
        assertMatchesReference(r.masks[0]!.mask, refs.get(name)!, threshold, `image ${name} in the batch of 4`);
      });
    });

    test('the same images in other groupings (C,A / B alone / B,C) give the same reference masks', async () => {
      fx.batches.length = 0;
      const ca = await send(['C', 'A']);
      const b = await send(['B']);
      const bc = await send(['B', 'C']);
      assert.deepEqual(fx.batches, [3, 1, 2]);
      assertMatchesReference(ca[0]!.masks[0]!.mask, refs.get('C')!, threshold, 'C first of C,A');
      assertMatchesReference(ca[1]!.masks[0]!.mask, refs.get('A')!, threshold, 'A (TTA) last of C,A');
      assertMatchesReference(b[0]!.masks[0]!.mask, refs.get('B')!, threshold, 'B alone');
      assertMatchesReference(bc[0]!.masks[0]!.mask, refs.get('B')!, threshold, 'B first of B,C');
      assertMatchesReference(bc[1]!.masks[0]!.mask, refs.get('C')!, threshold, 'C last of B,C');
    });
  });
}
