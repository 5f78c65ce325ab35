/**
 * The hospital routes against a real Orthanc and a real Engine (a small random-weight UNet):
 * POST /dicomweb/studies/{study}/series/{series}/segment pulls the series by WADO-RS, stores the SEG by
 * STOW-RS; the test reads the SEG back from Orthanc and decodes its frames to the masks the Engine gives
 * for the same images. Bad input: unknown series 404, PACS down 502, PACS silent 504, mixed sizes 422,
 * too many frames 413, client mode off 503. Also segFor + GET /segmentations/{id}/seg.dcm.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { performance } from 'node:perf_hooks';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import dcmjs from 'dcmjs';
import { newUid } from '../../core/dicom/write.ts';
import { startEngine, type EngineFixture } from '../../core/engine/testing/engine-fixtures.ts';
import { masksEqual } from '../../core/mask.ts';
import { segFor } from '../../core/seg/from-result.ts';
import { readSeg, segMaskFor } from '../../core/seg/read-seg.ts';
import { brainSeries } from '../../core/seg/testing.ts';
import errorHandling from '../../services/errors.ts';
import { DicomwebClient } from '../../services/dicomweb/client.ts';
import type { DicomwebConfig } from '../../services/dicomweb/config.ts';
import dicomwebRoutes from '../../services/routes/dicomweb.ts';
import segRoutes from '../../services/routes/seg.ts';
import { chestDicom } from '../../synth/index.ts';
import { freePort, orthancAvailable, startOrthanc, uploadInstance, type OrthancHandle } from '../helpers/orthanc.ts';

let orthanc: OrthancHandle;
let fx: EngineFixture;
let silent: Server;
const MODEL = { name: 'tiny-seg', version: '1', size: 64, depth: 2, baseChannels: 4, seed: 3, labels: ['tumour', 'brain'], classes: 2, threshold: 0.5 };

const cfg = (url: string | undefined, over: Partial<DicomwebConfig> = {}): DicomwebConfig => ({ url, authorization: undefined, timeoutMs: 15_000, maxInstances: 100, maxFrames: 100, maxBytes: 1 << 30, ...over });

async function appWith(config: DicomwebConfig, store?: Record<string, unknown>): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(errorHandling);
  app.decorate('lifecycle', { requireEngine: () => fx.engine } as never);
  app.decorate('config', { resultTtlSeconds: 60 } as never);
  app.decorate('store', (store ?? {}) as never);
  await app.register(dicomwebRoutes, { config });
  await app.register(segRoutes);
  return app;
}

before(async () => {
  assert.ok(orthancAvailable(), 'Orthanc with its DICOMweb plugin is not installed: run scripts/test-deps.sh');
  [orthanc, fx] = await Promise.all([startOrthanc(), startEngine([MODEL])]);
  silent = createServer(() => {}); // accepts connections, never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
});
after(async () => {
  silent?.close();
  await Promise.all([orthanc?.stop(), fx?.cleanup()]);
});

test('POST /dicomweb/.../segment: WADO-RS in, SEG out by STOW-RS; the SEG in Orthanc decodes to the Engine\'s masks', async (t) => {
  const s = brainSeries(31, 8, 128);
  for (const b of s.sources) await uploadInstance(orthanc, b);
  const app = await appWith(cfg(orthanc.dicomweb));
  const t0 = performance.now();
  const res = await app.inject({ method: 'POST', url: `/dicomweb/studies/${s.studyInstanceUid}/series/${s.seriesInstanceUid}/segment` });
  const ms = performance.now() - t0;
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json();
  t.diagnostic(`DICOMweb round trip (8 x 128^2 MR): ${ms.toFixed(0)} ms; timings ${JSON.stringify(body.timings)}`);
  assert.equal(body.instances, 8);
  assert.equal(body.frames.length, 8);
  assert.deepEqual(body.seg.segments.map((x: { label: string }) => x.label), ['tumour', 'brain']);
  assert.equal(body.model.name, MODEL.name);
  const areas = body.frames.flatMap((f: { masks: Array<{ area: number }> }) => f.masks.map((m) => m.area));
  t.diagnostic(`mask areas: ${areas.join(' ')}`);
  assert.ok(areas.some((a: number) => a > 0 && a < 128 * 128), 'the model gives partial masks, so the comparison means something');

  // The SEG is in Orthanc, in the source's study, under a new series.
  const client = new DicomwebClient({ baseUrl: orthanc.dicomweb });
  const segBytes = await client.retrieveInstance(s.studyInstanceUid, body.seg.seriesInstanceUid, body.seg.sopInstanceUid);
  const seg = readSeg(segBytes);
  assert.equal(seg.studyInstanceUid, s.studyInstanceUid);
  // Its frames are the Engine's masks for the same images (the engine is deterministic).
  for (let i = 0; i < 8; i++) {
    const direct = await fx.engine.segment({ dicom: s.sources[i]!, model: MODEL.name });
    direct.masks.forEach((m, l) => {
      assert.ok(masksEqual(segMaskFor(seg, l + 1, s.sopInstanceUids[i]!), m.mask), `slice ${i} ${m.label}`);
      const facts = body.frames.find((f: { sopInstanceUid: string }) => f.sopInstanceUid === s.sopInstanceUids[i])!.masks[l];
      assert.equal(facts.area, m.area);
    });
  }
  await app.close();
});

test('PACS problems: unknown series 404, PACS down 502, PACS silent 504 (problem+json), nothing stored', async () => {
  const before = ((await (await fetch(`${orthanc.url}/instances`)).json()) as string[]).length;
  const unknown = await appWith(cfg(orthanc.dicomweb));
  const r404 = await unknown.inject({ method: 'POST', url: `/dicomweb/studies/1.2.3.4/series/1.2.3.5/segment` });
  assert.equal(r404.statusCode, 404, r404.body);
  assert.match(r404.headers['content-type'] as string, /application\/problem\+json/);
  assert.equal(r404.json().code, 'SERIES_NOT_FOUND');

  const down = await appWith(cfg(`http://127.0.0.1:${await freePort()}/dicom-web`));
  const r502 = await down.inject({ method: 'POST', url: `/dicomweb/studies/1.2.3/series/1.2.4/segment` });
  assert.equal(r502.statusCode, 502, r502.body);
  assert.equal(r502.json().code, 'PACS_UNAVAILABLE');
  assert.match(r502.headers['content-type'] as string, /application\/problem\+json/);

  const slow = await appWith(cfg(`http://127.0.0.1:${(silent.address() as { port: number }).port}/dicom-web`, { timeoutMs: 300 }));
  const r504 = await slow.inject({ method: 'POST', url: `/dicomweb/studies/1.2.3/series/1.2.4/segment` });
  assert.equal(r504.statusCode, 504, r504.body);
  assert.equal(r504.json().code, 'PACS_TIMEOUT');

  const off = await appWith(cfg(undefined));
  const r503 = await off.inject({ method: 'POST', url: `/dicomweb/studies/1.2.3/series/1.2.4/segment` });
  assert.equal(r503.statusCode, 503);
  assert.equal(r503.json().code, 'DICOMWEB_NOT_CONFIGURED');

  const bad = await unknown.inject({ method: 'POST', url: `/dicomweb/studies/not-a-uid/series/1.2.4/segment` });
  assert.equal(bad.statusCode, 400);
  const after = ((await (await fetch(`${orthanc.url}/instances`)).json()) as string[]).length;
  assert.equal(after, before, 'nothing was written to the PACS');
  await Promise.all([unknown.close(), down.close(), slow.close(), off.close()]);
});

test('a series mixing image sizes is 422, one over the frame limit 413; nothing stored', async () => {
  const a = brainSeries(41, 3, 64);
  const b = brainSeries(42, 1, 96);
  // b's slice moved into a's series (new SOP Instance UID), so the series mixes 64x64 and 96x96.
  const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(b.sources[0]!.slice().buffer as ArrayBuffer).dict);
  const dict = dcmjs.data.DicomMessage.readFile(b.sources[0]!.slice().buffer as ArrayBuffer);
  Object.assign(ds, { StudyInstanceUID: a.studyInstanceUid, SeriesInstanceUID: a.seriesInstanceUid, SOPInstanceUID: newUid(), PatientID: dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(a.sources[0]!.slice().buffer as ArrayBuffer).dict).PatientID });
  const meta = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.meta);
  meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID;
  const out = new dcmjs.data.DicomDict(dcmjs.data.DicomMetaDictionary.denaturalizeDataset(meta));
  out.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(ds);
  for (const x of [...a.sources, new Uint8Array(out.write())]) await uploadInstance(orthanc, x);
  const before = ((await (await fetch(`${orthanc.url}/instances`)).json()) as string[]).length;

  const app = await appWith(cfg(orthanc.dicomweb));
  const r422 = await app.inject({ method: 'POST', url: `/dicomweb/studies/${a.studyInstanceUid}/series/${a.seriesInstanceUid}/segment` });
  assert.equal(r422.statusCode, 422, r422.body);
  assert.equal(r422.json().code, 'MIXED_SIZES');
  const small = await appWith(cfg(orthanc.dicomweb, { maxFrames: 2 }));
  const c = brainSeries(43, 3, 64);
  for (const x of c.sources) await uploadInstance(orthanc, x);
  const r413 = await small.inject({ method: 'POST', url: `/dicomweb/studies/${c.studyInstanceUid}/series/${c.seriesInstanceUid}/segment` });
  assert.equal(r413.statusCode, 413, r413.body);
  assert.equal(r413.json().code, 'SERIES_TOO_LARGE');
  const after = ((await (await fetch(`${orthanc.url}/instances`)).json()) as string[]).length;
  assert.equal(after, before + 3, 'only the uploaded instances, no SEG');
  await Promise.all([app.close(), small.close()]);
});

test('segFor + GET /segmentations/{id}/seg.dcm: the stored SEG bytes, 404 without them', async () => {
  const c = await chestDicom(5, { size: 128, transferSyntaxUid: '1.2.840.10008.1.2.1' });
  const result = await fx.engine.segment({ dicom: c.bytes, model: MODEL.name });
  const seg = segFor(result, c.bytes, fx.engine.model(MODEL.name)?.manifest);
  const back = readSeg(seg.bytes);
  result.masks.forEach((m, l) => assert.ok(masksEqual(segMaskFor(back, l + 1, c.sopInstanceUid), m.mask)));
  assert.equal(back.segments.length, 2);

  const id = '0b6a4f8e-2f0c-4a55-9d5c-5f3e0b7c1a22';
  const kept = new Map<string, Uint8Array>([[id, seg.bytes]]);
  const app = await appWith(cfg(undefined), { getSeg: async (k: string) => kept.get(k) });
  const ok = await app.inject({ method: 'GET', url: `/segmentations/${id}/seg.dcm` });
  assert.equal(ok.statusCode, 200);
  assert.equal(ok.headers['content-type'], 'application/dicom');
  assert.deepEqual(new Uint8Array(ok.rawPayload), seg.bytes);
  const missing = await app.inject({ method: 'GET', url: `/segmentations/1b6a4f8e-2f0c-4a55-9d5c-5f3e0b7c1a22/seg.dcm` });
  assert.equal(missing.statusCode, 404);
  await app.close();
});
