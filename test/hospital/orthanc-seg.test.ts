/**
 * Round trip through a real PACS (Debian Orthanc + DICOMweb plugin, started on free ports):
 * upload a synthetic MR study (REST POST /instances), read it back with WADO-RS, write the SEG from the
 * retrieved bytes, store it with STOW-RS, retrieve the SEG with WADO-RS and decode its frames to the masks.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { masksEqual } from '../../core/mask.ts';
import { readSeg, segMaskFor } from '../../core/seg/read-seg.ts';
import { brainSeries } from '../../core/seg/testing.ts';
import { writeSeg } from '../../core/seg/write-seg.ts';
import { readHeader } from '../../core/seg/write-seg.ts';
import { DicomwebClient, DicomwebError } from '../../services/dicomweb/client.ts';
import { freePort, orthancAvailable, startOrthanc, uploadInstance, type OrthancHandle } from '../helpers/orthanc.ts';

let orthanc: OrthancHandle;

before(async () => {
  // scripts/test-deps.sh installs orthanc + orthanc-dicomweb; without them this fails rather than skips.
  assert.ok(orthancAvailable(), 'Orthanc with its DICOMweb plugin is not installed: run scripts/test-deps.sh');
  orthanc = await startOrthanc();
});
after(async () => {
  await orthanc?.stop();
});

test('Orthanc: upload a study, WADO-RS it back, STOW-RS the SEG, WADO-RS the SEG and decode it to the same masks', async (t) => {
  const s = brainSeries(21, 10, 256);
  const t0 = performance.now();
  for (const b of s.sources) assert.equal((await uploadInstance(orthanc, b)).Status, 'Success');
  const tUpload = performance.now();

  const client = new DicomwebClient({ baseUrl: orthanc.dicomweb, timeoutMs: 20_000 });
  const pulled = await client.retrieveSeries(s.studyInstanceUid, s.seriesInstanceUid);
  const tWado = performance.now();
  assert.equal(pulled.length, 10);
  // WADO-RS returns the instances in any order: match them by SOP Instance UID.
  const bySop = new Map(pulled.map((b) => [readHeader(b).SOPInstanceUID as string, b]));
  const sources = s.sopInstanceUids.map((u) => bySop.get(u)!);
  assert.ok(sources.every(Boolean));

  const seg = writeSeg({ sources, frames: s.masks.map((masks, i) => ({ source: i, masks })), labels: s.labels, algorithm: { name: 'unet-test', version: '1' } });
  const tSeg = performance.now();
  await client.store([seg.bytes], s.studyInstanceUid);
  const tStow = performance.now();

  const listed = await client.listInstances(seg.studyInstanceUid, seg.seriesInstanceUid);
  assert.deepEqual(listed, [seg.sopInstanceUid]);
  const back = await client.retrieveInstance(seg.studyInstanceUid, seg.seriesInstanceUid, seg.sopInstanceUid);
  const tBack = performance.now();
  const r = readSeg(back);
  assert.equal(r.sopInstanceUid, seg.sopInstanceUid);
  assert.equal(r.studyInstanceUid, s.studyInstanceUid);
  for (let i = 0; i < 10; i++) {
    for (let l = 0; l < 2; l++) assert.ok(masksEqual(segMaskFor(r, l + 1, s.sopInstanceUids[i]!), s.masks[i]![l]!), `slice ${i} label ${s.labels[l]}`);
  }
  // Orthanc files the SEG under the source's patient and study.
  const studies = (await (await fetch(`${orthanc.url}/studies`)).json()) as string[];
  assert.equal(studies.length, 1);
  t.diagnostic(
    `Orthanc round trip (10 x 256^2 MR, SEG ${seg.bytes.length} bytes): upload ${(tUpload - t0).toFixed(0)} ms, WADO-RS series ${(tWado - tUpload).toFixed(0)} ms, ` +
      `SEG ${(tSeg - tWado).toFixed(0)} ms, STOW-RS ${(tStow - tSeg).toFixed(0)} ms, QIDO+WADO-RS SEG ${(tBack - tStow).toFixed(0)} ms`,
  );
});

test('DICOMweb client: unknown series is not-found; a closed port is unreachable; a silent server times out', async () => {
  const client = new DicomwebClient({ baseUrl: orthanc.dicomweb, timeoutMs: 5000 });
  await assert.rejects(client.retrieveSeries('1.2.3.4', '1.2.3.5'), (e: unknown) => e instanceof DicomwebError && e.kind === 'not-found');
  const closed = new DicomwebClient({ baseUrl: `http://127.0.0.1:${await freePort()}/dicom-web`, timeoutMs: 2000 });
  await assert.rejects(closed.retrieveSeries('1.2.3', '1.2.4'), (e: unknown) => e instanceof DicomwebError && e.kind === 'unreachable');
  const { createServer } = await import('node:net');
  const silent = createServer(() => {}); // accepts, never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  try {
    const slow = new DicomwebClient({ baseUrl: `http://127.0.0.1:${(silent.address() as { port: number }).port}`, timeoutMs: 300 });
    await assert.rejects(slow.retrieveSeries('1.2.3', '1.2.4'), (e: unknown) => e instanceof DicomwebError && e.kind === 'timeout');
  } finally {
    silent.close();
  }
});
