/**
 * DICOM SEG over HTTP: POST /segment with Accept: application/dicom answers a SEG (validated by
 * dciodvfy, referencing the sent instance) whose frame decodes to the mask the JSON answer gives for
 * the same image; the SEG is kept with the result and served again at /segmentations/{id}/seg.dcm.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chestDicom } from '../../synth/index.ts';
import { TS } from '../../core/dicom/transfer-syntax.ts';
import { decodeMask } from '../../core/rle/index.ts';
import { readSeg, segMaskFor } from '../../core/seg/read-seg.ts';
import { dciodvfy } from '../../core/seg/seg-check.ts';
import { modelRepository, postDicom, startInProcess, type InProcess } from '../service/helpers.ts';

let svc: InProcess;
let repo: { dir: string; remove: () => Promise<void> };
before(async () => {
  repo = await modelRepository();
  svc = await startInProcess({ MODEL_REPOSITORY: repo.dir });
});
after(async () => {
  await svc.close();
  await repo.remove();
});

test('Accept: application/dicom returns a valid SEG of the JSON answer, and the stored result serves it again', async () => {
  const src = await chestDicom(21, { size: 64, transferSyntaxUid: TS.ExplicitVRLittleEndian });
  const json = (await (await postDicom(svc.url, src.bytes, '?threshold=0.6&rleFormat=coco')).json()) as { masks: Array<{ label: string; area: number; rle: { counts: number[]; size: [number, number] } }> };
  const res = await postDicom(svc.url, src.bytes, '?threshold=0.6', { accept: 'application/dicom' });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/dicom');
  const location = res.headers.get('content-location');
  assert.ok(location, 'the result was stored');
  const seg = new Uint8Array(await res.arrayBuffer());
  const { errors } = await dciodvfy(seg);
  assert.deepEqual(errors, [], 'dciodvfy reports no errors');
  const parsed = readSeg(seg);
  assert.equal(parsed.segments.length, 1);
  assert.equal(parsed.segments[0]!.label, json.masks[0]!.label);
  const sop = parsed.frames[0]!.sopInstanceUid;
  const mask = segMaskFor(parsed, 1, sop);
  const expected = decodeMask(json.masks[0]!.rle.counts, 'coco', 64, 64);
  assert.deepEqual(Array.from(mask.data), Array.from(expected.data), 'the SEG frame is the JSON mask');
  assert.ok(json.masks[0]!.area > 0 && json.masks[0]!.area < 64 * 64, 'a partial mask, so equality means something');

  const again = await fetch(`${svc.url}${location}/seg.dcm`);
  assert.equal(again.status, 200);
  assert.deepEqual(new Uint8Array(await again.arrayBuffer()), seg);
  assert.match(again.headers.get('cache-control') ?? '', /no-store/);

  const noSeg = await postDicom(svc.url, src.bytes);
  const loc = noSeg.headers.get('content-location')!;
  assert.equal((await fetch(`${svc.url}${loc}/seg.dcm`)).status, 404, 'only results that asked for a SEG keep one');
});
