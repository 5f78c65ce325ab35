/**
 * Post-processing rules through the engine: the manifest's per-label rules apply when a request sets
 * none, a request's rule replaces them for every label, bad rule values name their field, and a softmax
 * model returns one exclusive mask per non-background class. Oracle: the engine's own unfiltered masks
 * passed through core/segmentation's filterComponents (property-tested against a flood fill).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chestDicom } from '../../synth/index.ts';
import { TS } from '../dicom/transfer-syntax.ts';
import { createMask } from '../mask.ts';
import { connectedComponents, filterComponents } from '../segmentation/components.ts';
import { InvalidRequestError } from './errors.ts';
import { startEngine, type EngineFixture } from './testing/engine-fixtures.ts';
import { softmaxFixture } from '../../test/helpers/model-fixture.ts';

describe('rules through the engine', () => {
  let fx: EngineFixture;
  let dicom: Uint8Array;
  before(async () => {
    fx = await startEngine([
      {
        name: 'two',
        version: '1',
        size: 64,
        depth: 2,
        baseChannels: 4,
        classes: 2,
        labels: ['organ', 'lesion'],
        seed: 7,
        editManifest: (m) => (m.postprocessing.classes = { lesion: { keepLargest: true } }),
      },
      softmaxFixture('exclusive'),
    ]);
    dicom = (await chestDicom(5, { size: 64, transferSyntaxUid: TS.ExplicitVRLittleEndian })).bytes;
  });
  after(() => fx.cleanup());

  test('manifest per-label rules apply by default; a request rule replaces them for every label', async () => {
    // A threshold at which the lesion channel breaks into several components, so keep-largest matters.
    let threshold = 0;
    let raw: Awaited<ReturnType<typeof fx.engine.segment>> | undefined;
    for (const t of [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.4, 0.3]) {
      const r = await fx.engine.segment({ dicom, model: 'two', threshold: t, keepLargest: false });
      if (connectedComponents(r.masks[1]!.mask).areas.length > 2) {
        threshold = t;
        raw = r;
        break;
      }
    }
    assert.ok(raw, 'some threshold splits the lesion channel into components');
    const byManifest = await fx.engine.segment({ dicom, model: 'two', threshold });
    const [organ, lesion] = byManifest.masks;
    assert.deepEqual(organ!.mask.data, raw.masks[0]!.mask.data, 'organ has no rule');
    const expected = filterComponents(createMask(64, 64, raw.masks[1]!.mask.data.slice()), { keepLargest: true });
    assert.deepEqual(lesion!.mask.data, expected.data, 'lesion: the largest component only');
    assert.equal(lesion!.keepLargest, true);
    assert.equal(organ!.keepLargest, undefined);
    assert.ok(lesion!.area < raw.masks[1]!.area);
  });

  test('bad rule values are refused naming the field', async () => {
    await assert.rejects(fx.engine.segment({ dicom, model: 'two', minComponentArea: -1 }), (e: Error) => e instanceof InvalidRequestError && e.field === 'minComponentArea');
    await assert.rejects(fx.engine.segment({ dicom, model: 'two', topThreshold: 1 }), (e: Error) => e instanceof InvalidRequestError && e.field === 'topThreshold');
    await assert.rejects(fx.engine.segment({ dicom, model: 'two', keepLargest: 'yes' as never }), (e: Error) => e instanceof InvalidRequestError && e.field === 'keepLargest');
  });

  test('softmax model: one exclusive mask per non-background class, threshold null', async () => {
    const r = await fx.engine.segment({ dicom, model: 'exclusive' });
    assert.deepEqual(r.masks.map((m) => m.label), ['lung', 'heart']);
    const [lung, heart] = r.masks;
    for (let i = 0; i < 64 * 64; i++) assert.ok(lung!.mask.data[i]! + heart!.mask.data[i]! <= 1);
    assert.equal(lung!.threshold, null);
    const tta = await fx.engine.segment({ dicom, model: 'exclusive', tta: true });
    assert.equal(tta.masks.length, 2);
  });
});
