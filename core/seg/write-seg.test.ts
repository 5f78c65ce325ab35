import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { chestDicom } from '../../synth/index.ts';
import { createMask, maskArea, masksEqual, type Mask } from '../mask.ts';
import { readSeg, segMaskFor } from './read-seg.ts';
import { cornerstoneToolState, dciodvfy, dcmdump, dcmjsRead, hasTool, items } from './seg-check.ts';
import { brainSeries, enhancedMultiFrame, multiFrameSc } from './testing.ts';
import { packBits, SEGMENTATION_STORAGE, SegWriteError, writeSeg } from './write-seg.ts';
import { unpackBits } from './read-seg.ts';
import { codesForLabel } from './codes.ts';

/** dciodvfy must be there once scripts/test-deps.sh ran (Debian dicom3tools): a missing tool fails. */
async function validate(bytes: Uint8Array): Promise<string> {
  assert.ok(await hasTool('dciodvfy'), 'dciodvfy not found: run scripts/test-deps.sh (Debian package dicom3tools)');
  const { output, errors } = await dciodvfy(bytes);
  assert.deepEqual(errors, [], `dciodvfy reported errors:\n${output}`);
  assert.match(output, /Segmentation/);
  assert.ok(await hasTool('dcmdump'), 'dcmdump not found: run scripts/test-deps.sh (Debian package dcmtk)');
  const dump = await dcmdump(bytes);
  assert.ok(dump.ok, `dcmdump failed: ${dump.problems.join('\n')}`);
  assert.deepEqual(dump.problems.filter((l) => l.startsWith('E:') || l.startsWith('F:')), []);
  assert.match(dump.dump, /SegmentationStorage/);
  return output;
}

const ALGO = { name: 'unet-test', version: '1.2.3' };

test('bit packing: LSB first, frames back to back without byte alignment, even length', () => {
  const a = Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0]);
  const b = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  const p = packBits([a, b], 11);
  assert.equal(p.length, 4); // 22 bits -> 3 bytes -> padded to 4
  assert.deepEqual([...p], [0b00000001, 0b00000011, 0b00100000, 0]);
  assert.deepEqual([...unpackBits(p, 11, 11)], [...b]);
});

test('codes: table by label words, defaults otherwise', () => {
  assert.equal(codesForLabel('pneumothorax').type.CodeMeaning, 'Pneumothorax');
  assert.equal(codesForLabel('left_lung').type.CodeValue, '39607008');
  assert.equal(codesForLabel('Brain Tumour').type.CodeMeaning, 'Neoplasm');
  assert.equal(codesForLabel('whatever').category.CodeMeaning, 'Tissue');
  assert.equal(codesForLabel('whatever').type.CodeMeaning, 'Morphologically Altered Structure');
});

test('SEG for a 1024x1024 synthetic radiograph: dciodvfy-clean, dcmdump parses, dcmjs reads back the mask', async (t) => {
  const c = await chestDicom(11, { size: 1024 });
  let mask = c.mask;
  if (maskArea(mask) === 0) {
    // The seed gave a negative; draw a lesion-like block so the test always has foreground.
    const data = new Uint8Array(1024 * 1024);
    for (let y = 100; y < 300; y++) for (let x = 50; x < 170; x++) data[y * 1024 + x] = 1;
    mask = createMask(1024, 1024, data);
  }
  const t0 = performance.now();
  const r = writeSeg({ sources: [c.bytes], frames: [{ source: 0, masks: [mask] }], labels: ['pneumothorax'], algorithm: ALGO });
  const ms = performance.now() - t0;
  t.diagnostic(`1024x1024 radiograph SEG: ${r.bytes.length} bytes in ${ms.toFixed(1)} ms`);
  const report = await validate(r.bytes);
  t.diagnostic(`dciodvfy:\n${report.trim()}`);

  // dcmjs, not our reader.
  const { dataset, frames } = dcmjsRead(r.bytes);
  assert.equal(dataset.SOPClassUID, SEGMENTATION_STORAGE);
  assert.equal(dataset.Modality, 'SEG');
  assert.equal(dataset.SegmentationType, 'BINARY');
  assert.equal(dataset.BitsAllocated, 1);
  assert.notEqual(dataset.SeriesInstanceUID, undefined);
  assert.equal(dataset.SOPInstanceUID, r.sopInstanceUid);
  assert.equal(dataset.PatientName?.[0]?.Alphabetic ?? dataset.PatientName, 'SYNTHETIC^PHANTOM');
  const seg = items(dataset.SegmentSequence);
  assert.equal(seg.length, 1);
  assert.equal(seg[0]!.SegmentLabel, 'pneumothorax');
  assert.equal(seg[0]!.SegmentAlgorithmType, 'AUTOMATIC');
  assert.equal(seg[0]!.SegmentAlgorithmName, ALGO.name);
  assert.equal(items(items(seg[0]!.SegmentationAlgorithmIdentificationSequence)[0]!.AlgorithmFamilyCodeSequence)[0]!.CodeValue, '123110');
  assert.equal(items(seg[0]!.SegmentedPropertyTypeCodeSequence)[0]!.CodeValue, '36118008');
  assert.equal(frames.length, 1);
  assert.ok(masksEqual(createMask(1024, 1024, frames[0]!), mask));
  const src = items(items(items(dataset.PerFrameFunctionalGroupsSequence)[0]!.DerivationImageSequence)[0]!.SourceImageSequence)[0]!;
  assert.equal(src.ReferencedSOPInstanceUID, c.sopInstanceUid);
  assert.equal(src.ReferencedFrameNumber, undefined, 'single-frame source: no frame number');
  assert.equal(r.bytes.length < 1024 * 1024 / 8 + 8192, true, 'one bit per pixel');

  // The viewer path (no Frame of Reference: dcmjs's planar case).
  const state = cornerstoneToolState(r.bytes, [{ sopInstanceUid: c.sopInstanceUid }], 1024, 1024, 'unused');
  assert.ok(masksEqual(createMask(1024, 1024, state.get(c.sopInstanceUid)!.get(0)!), mask));

  // Our reader agrees.
  const back = readSeg(r.bytes);
  assert.ok(masksEqual(segMaskFor(back, 1, c.sopInstanceUid), mask));
});

test('SEG for a 20-slice MR series: 2 segments, positions, per-frame source references; Cornerstone adapter reads the masks', async (t) => {
  const s = brainSeries(5, 20, 256);
  const t0 = performance.now();
  const r = writeSeg({
    sources: s.sources,
    frames: s.masks.map((masks, i) => ({ source: i, masks })),
    labels: s.labels,
    algorithm: ALGO,
  });
  t.diagnostic(`20x256x256 series SEG: ${r.bytes.length} bytes, ${r.frames.length} frames in ${(performance.now() - t0).toFixed(1)} ms`);
  await validate(r.bytes);

  const { dataset, frames } = dcmjsRead(r.bytes);
  assert.equal(dataset.StudyInstanceUID, s.studyInstanceUid);
  assert.notEqual(dataset.SeriesInstanceUID, s.seriesInstanceUid);
  assert.ok(dataset.FrameOfReferenceUID);
  assert.equal(items(dataset.SegmentSequence).length, 2);
  assert.deepEqual(items(dataset.SegmentSequence).map((x) => x.SegmentLabel), ['tumour', 'brain']);
  const shared = items(dataset.SharedFunctionalGroupsSequence)[0]!;
  assert.equal(Number(items(shared.PixelMeasuresSequence)[0]!.PixelSpacing[0]), 240 / 256);
  assert.deepEqual(items(shared.PlaneOrientationSequence)[0]!.ImageOrientationPatient.map(Number), [1, 0, 0, 0, 1, 0]);
  const refSeries = items(dataset.ReferencedSeriesSequence);
  assert.equal(refSeries.length, 1);
  assert.equal(items(refSeries[0]!.ReferencedInstanceSequence).length, 20);

  // Every non-empty (slice, label) is a frame; its pixels, source and position match.
  const perFrame = items(dataset.PerFrameFunctionalGroupsSequence);
  let expected = 0;
  for (let i = 0; i < 20; i++) for (let l = 0; l < 2; l++) if (maskArea(s.masks[i]![l]!) > 0) expected++;
  assert.equal(frames.length, expected);
  assert.ok(s.masks.some((m) => maskArea(m[0]!) === 0), 'some slices have no tumour (so frames are omitted)');
  perFrame.forEach((fg, k) => {
    const segNo = Number(items(fg.SegmentIdentificationSequence)[0]!.ReferencedSegmentNumber);
    const src = items(items(fg.DerivationImageSequence)[0]!.SourceImageSequence)[0]!;
    const slice = s.sopInstanceUids.indexOf(src.ReferencedSOPInstanceUID);
    assert.ok(slice >= 0);
    assert.deepEqual(items(fg.PlanePositionSequence)[0]!.ImagePositionPatient.map(Number), [-120, -120, -50 + 5 * slice]);
    assert.ok(masksEqual(createMask(256, 256, frames[k]!), s.masks[slice]![segNo - 1]!), `frame ${k + 1}`);
  });

  // The viewer path: dcmjs's Cornerstone Segmentation adapter maps frames to the source images.
  const state = cornerstoneToolState(r.bytes, s.sopInstanceUids.map((sopInstanceUid) => ({ sopInstanceUid })), 256, 256, s.seriesInstanceUid);
  for (let i = 0; i < 20; i++) {
    for (let l = 0; l < 2; l++) {
      const got = state.get(s.sopInstanceUids[i]!)?.get(l);
      const want = s.masks[i]![l]!;
      if (maskArea(want) === 0) assert.ok(!got || got.every((v) => v === 0));
      else assert.ok(got && masksEqual(createMask(256, 256, got), want), `slice ${i} label ${l}`);
    }
  }
});

test('SEG for a 100-slice 512x512 series: size and time (for the closing note)', async (t) => {
  const s = brainSeries(9, 100, 512);
  const t0 = performance.now();
  const r = writeSeg({ sources: s.sources, frames: s.masks.map((masks, i) => ({ source: i, masks: [masks[0]!] })), labels: ['tumour'], algorithm: ALGO });
  const ms = performance.now() - t0;
  t.diagnostic(`100x512x512 series SEG (tumour): ${r.bytes.length} bytes, ${r.frames.length} frames in ${ms.toFixed(0)} ms`);
  await validate(r.bytes);
  const back = readSeg(r.bytes);
  for (let i = 0; i < 100; i += 7) assert.ok(masksEqual(segMaskFor(back, 1, s.sopInstanceUids[i]!), s.masks[i]![0]!), `slice ${i}`);
});

test('SEG for multi-frame sources: referenced frame numbers (legacy SC and enhanced MR with functional-group geometry)', async () => {
  const s = brainSeries(7, 12, 128);
  // Legacy multi-frame Secondary Capture: no patient geometry, frames ordered by stack position.
  const sc = multiFrameSc(s, 70);
  const r1 = writeSeg({ sources: [sc.bytes], frames: s.masks.map((masks, i) => ({ source: 0, frame: i, masks })), labels: s.labels, algorithm: ALGO, omitEmptyFrames: false });
  await validate(r1.bytes);
  assert.equal(r1.frames.length, 24);
  const back1 = readSeg(r1.bytes);
  for (let i = 0; i < 12; i++) {
    for (let l = 0; l < 2; l++) assert.ok(masksEqual(segMaskFor(back1, l + 1, sc.sopInstanceUid, i + 1), s.masks[i]![l]!), `frame ${i + 1} label ${l}`);
  }
  const { dataset } = dcmjsRead(r1.bytes);
  assert.equal(dataset.FrameOfReferenceUID, undefined);
  const refs = items(dataset.PerFrameFunctionalGroupsSequence).map((fg) => Number(items(items(fg.DerivationImageSequence)[0]!.SourceImageSequence)[0]!.ReferencedFrameNumber));
  assert.deepEqual(refs, [...Array.from({ length: 12 }, (_, i) => i + 1), ...Array.from({ length: 12 }, (_, i) => i + 1)]);

  // Enhanced-style MR: positions from the per-frame groups, orientation and spacing from the shared group.
  const en = enhancedMultiFrame(s, 71);
  const order = [5, 2, 9, 0]; // a subset, out of order
  const r2 = writeSeg({ sources: [en.bytes], frames: order.map((i) => ({ source: 0, frame: i, masks: s.masks[i]! })), labels: s.labels, algorithm: ALGO, segments: 'nonEmpty' });
  await validate(r2.bytes);
  const state = cornerstoneToolState(r2.bytes, order.map((i) => ({ sopInstanceUid: en.sopInstanceUid, frame: i + 1 })), 128, 128, 'unused');
  for (const i of order) {
    const got = state.get(`${en.sopInstanceUid}#${i + 1}`);
    const segs = readSeg(r2.bytes).segments;
    for (const seg of segs) {
      const li = s.labels.indexOf(seg.label);
      const want = s.masks[i]![li]!;
      const px = got?.get(seg.number - 1);
      if (maskArea(want) === 0) assert.ok(!px || px.every((v) => v === 0));
      else assert.ok(px && masksEqual(createMask(128, 128, px), want), `frame ${i + 1} ${seg.label}`);
    }
  }
  const back2 = readSeg(r2.bytes);
  const f0 = back2.frames.find((f) => f.referencedFrameNumber === 10)!;
  assert.deepEqual(f0.position, en.positions[9]);
});

test('an all-empty result still makes a valid SEG (one empty frame); segments "nonEmpty" keeps one', async () => {
  const c = await chestDicom(2, { size: 128 });
  const empty = createMask(128, 128);
  const r = writeSeg({ sources: [c.bytes], frames: [{ source: 0, masks: [empty, empty] }], labels: ['lung', 'heart'], algorithm: ALGO });
  await validate(r.bytes);
  assert.equal(r.segments.length, 2);
  assert.equal(r.frames.length, 1);
  const r2 = writeSeg({ sources: [c.bytes], frames: [{ source: 0, masks: [empty, empty] }], labels: ['lung', 'heart'], algorithm: ALGO, segments: 'nonEmpty' });
  assert.equal(r2.segments.length, 1);
  await validate(r2.bytes);
});

test('bad input: mixed sizes, wrong mask size, missing frames, masks per label', async () => {
  const a = await chestDicom(3, { size: 128 });
  const b = await chestDicom(3, { size: 64 });
  const m128: Mask = createMask(128, 128);
  assert.throws(() => writeSeg({ sources: [a.bytes, b.bytes], frames: [{ source: 0, masks: [m128] }], labels: ['x'], algorithm: ALGO }), SegWriteError);
  assert.throws(() => writeSeg({ sources: [a.bytes], frames: [{ source: 0, masks: [createMask(64, 64)] }], labels: ['x'], algorithm: ALGO }), /mask is 64x64/);
  assert.throws(() => writeSeg({ sources: [a.bytes], frames: [{ source: 0, frame: 1, masks: [m128] }], labels: ['x'], algorithm: ALGO }), /does not exist/);
  assert.throws(() => writeSeg({ sources: [a.bytes], frames: [{ source: 0, masks: [m128] }], labels: ['x', 'y'], algorithm: ALGO }), /1 masks for 2 labels/);
  const noSeries = (await import('../dicom/write.ts')).writeDicom({ rows: 128, columns: 128, bitsAllocated: 8, pixels: new Uint8Array(128 * 128), sopInstanceUid: '1.2.3.4' });
  assert.throws(() => writeSeg({ sources: [noSeries], frames: [{ source: 0, masks: [m128] }], labels: ['x'], algorithm: ALGO }), /no Study\/Series Instance UID/);
  assert.throws(() => writeSeg({ sources: [new Uint8Array(10)], frames: [{ source: 0, masks: [m128] }], labels: ['x'], algorithm: ALGO }), SegWriteError);
});
