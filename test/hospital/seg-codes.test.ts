/**
 * SEG codes from the manifest: model.json's optional `segments` (per label: category and type, with
 * DICOM's Code Sequence keywords) is validated with the manifest, and manifestCodes turns it into
 * writeSeg's `codes` (the palette colour kept, labels left out keep codes.ts's defaults). That the SEGs
 * the service writes carry them, and pass dciodvfy, is test/hospital/series-http.test.ts.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseManifest } from '../../core/manifest.ts';
import { codesForLabel, manifestCodes } from '../../core/seg/codes.ts';
import { readSeg } from '../../core/seg/read-seg.ts';
import { dciodvfy, hasTool } from '../../core/seg/seg-check.ts';
import { brainSeries } from '../../core/seg/testing.ts';
import { writeSeg } from '../../core/seg/write-seg.ts';
import { makeModelRepository } from '../helpers/model-fixture.ts';
import { tempDir } from '../service/helpers.ts';

const code = (CodeValue: string, CodeMeaning: string) => ({ CodeValue, CodingSchemeDesignator: 'SCT', CodeMeaning });
const TUMOUR = { category: code('49755003', 'Morphologically Altered Structure'), type: code('399981008', 'Neoplasm of brain') };

let manifest: Record<string, any>;
let dir: { dir: string; remove: () => Promise<void> };
before(async () => {
  dir = await tempDir('codes');
  await makeModelRepository(dir.dir, [{ name: 'codes', version: '1', size: 32, depth: 1, baseChannels: 2, classes: 2, labels: ['tumour', 'brain'] }]);
  manifest = JSON.parse(await readFile(join(dir.dir, 'codes', '1', 'model.json'), 'utf8'));
});
after(() => dir?.remove());

const withSegments = (segments: unknown) => ({ ...manifest, segments });

test('model.json segments: optional, validated per label and per code', () => {
  assert.equal(parseManifest(manifest).segments, undefined, 'absent: the defaults');
  assert.deepEqual(parseManifest(withSegments({ tumour: TUMOUR })).segments, { tumour: TUMOUR });
  const bad: Array<[unknown, RegExp]> = [
    [{ lesion: TUMOUR }, /segments\.lesion: .*not one of the labels/],
    [{ tumour: { category: TUMOUR.category } }, /segments\.tumour\.type/],
    [{ tumour: { ...TUMOUR, type: code('12345678901234567', 'x') } }, /segments\.tumour\.type\.CodeValue/],
    [{ tumour: { ...TUMOUR, type: code('1', 'a\\b') } }, /segments\.tumour\.type\.CodeMeaning: no backslash/],
    [{ tumour: { ...TUMOUR, type: { ...code('1', 'x'), value: '1' } } }, /segments\.tumour\.type/],
    [{ tumour: { ...TUMOUR, type: code('1', 'm'.repeat(65)) } }, /CodeMeaning/],
  ];
  for (const [segments, message] of bad) assert.throws(() => parseManifest(withSegments(segments)), message, JSON.stringify(segments));
  const softmax = { ...manifest, output: { ...manifest.output, activation: 'softmax' }, background: 'brain' };
  assert.throws(() => parseManifest({ ...softmax, segments: { brain: TUMOUR } }), /segments\.brain: "brain" is the background channel/);
});

test('manifestCodes: the named labels\' codes with their segment\'s palette colour; the others left to the defaults', () => {
  assert.equal(manifestCodes(['tumour', 'brain'], undefined), undefined);
  assert.equal(manifestCodes(['brain'], { tumour: TUMOUR }), undefined);
  const codes = manifestCodes(['brain', 'tumour'], { tumour: TUMOUR })!;
  assert.deepEqual(Object.keys(codes), ['tumour']);
  assert.deepEqual(codes.tumour, { ...TUMOUR, cielab: codesForLabel('tumour', 2).cielab });
});

test('a SEG written with manifest codes carries them and passes dciodvfy', async (t) => {
  const s = brainSeries(81, 3, 64);
  const seg = writeSeg({
    sources: s.sources,
    frames: s.masks.map((m, i) => ({ source: i, masks: m })),
    labels: s.labels,
    algorithm: { name: 'codes', version: '1' },
    codes: manifestCodes(s.labels, { tumour: TUMOUR }),
  });
  const back = readSeg(seg.bytes);
  assert.deepEqual(
    back.segments.map((x) => [x.label, x.category, x.type]),
    [
      ['tumour', TUMOUR.category.CodeMeaning, TUMOUR.type.CodeMeaning],
      ['brain', 'Anatomical Structure', 'Brain'],
    ],
  );
  assert.equal(back.dataset.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue, '399981008');
  if (!(await hasTool('dciodvfy'))) return t.skip('dciodvfy missing (Debian dicom3tools)');
  assert.deepEqual((await dciodvfy(seg.bytes)).errors, []);
});
