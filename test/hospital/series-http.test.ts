/**
 * POST /segment in series mode over real HTTP with a real Engine (a small random-weight UNet whose
 * manifest names SEG codes for one label): a multipart/related series, or one multi-frame instance with
 * ?frames=all, answers one result per frame equal to single-image POSTs of the same instances (and
 * frames), and one SEG (dciodvfy-clean, frames decoding to the JSON masks, the manifest's codes), kept
 * at /segmentations/{id}/seg.dcm. Limits 413 with our codes; mixed sizes / series 422; garbage 4xx.
 * Logs carry no patient attributes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import dcmjs from 'dcmjs';
import { newUid } from '../../core/dicom/write.ts';
import { decodeMask } from '../../core/rle/index.ts';
import { readSeg, segMaskFor } from '../../core/seg/read-seg.ts';
import { dciodvfy, hasTool } from '../../core/seg/seg-check.ts';
import { brainSeries, enhancedMultiFrame, multiFrameSc } from '../../core/seg/testing.ts';
import { buildMultipart } from '../../services/dicomweb/multipart.ts';
import { SYNTHETIC_PATIENT_NAME } from '../../synth/index.ts';
import type { FixtureModel } from '../helpers/model-fixture.ts';
import { captureLogger, modelRepository, postDicom, startInProcess, type InProcess } from '../service/helpers.ts';

const TUMOUR_CODES = {
  category: { CodeValue: '49755003', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Morphologically Altered Structure' },
  type: { CodeValue: '399981008', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Neoplasm of brain' },
};
const MODEL: FixtureModel = {
  name: 'tiny-brain',
  version: '1',
  size: 64,
  depth: 2,
  baseChannels: 4,
  seed: 3,
  labels: ['tumour', 'brain'],
  classes: 2,
  threshold: 0.5,
  editManifest: (m) => {
    m.segments = { tumour: TUMOUR_CODES };
  },
};

interface Result {
  id: string;
  model: unknown;
  image: { sopInstanceUid: string; frame: number; rows: number; columns: number };
  masks: Array<{ label: string; area: number; rle: { counts: number[]; size: [number, number] } }>;
  stored: boolean;
}
interface Series {
  model: { name: string };
  instances: number;
  results: Result[];
  seg: { sopInstanceUid: string; seriesInstanceUid: string; bytes: number; frames: number; segments: Array<{ number: number; label: string }>; location?: string };
  timings: { segmentMs: number; writeMs: number; totalMs: number };
}

const related = (parts: Uint8Array[]) => buildMultipart(parts);

function postSeries(url: string, parts: Uint8Array[], query = '', headers: Record<string, string> = {}): Promise<Response> {
  const { body, contentType } = related(parts);
  return fetch(`${url}/segment${query}`, { method: 'POST', headers: { 'content-type': contentType, ...headers }, body });
}

/** A copy of a Part 10 instance with some attributes replaced (dcmjs). */
function retag(bytes: Uint8Array, attrs: Record<string, unknown>): Uint8Array {
  const dict = dcmjs.data.DicomMessage.readFile(bytes.slice().buffer as ArrayBuffer);
  const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict);
  Object.assign(ds, attrs);
  const meta = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.meta);
  if (attrs.SOPInstanceUID) meta.MediaStorageSOPInstanceUID = attrs.SOPInstanceUID;
  const out = new dcmjs.data.DicomDict(dcmjs.data.DicomMetaDictionary.denaturalizeDataset(meta));
  out.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(ds);
  return new Uint8Array(out.write());
}

/** What must be equal between a series frame's result and a single-image POST's: all but id, dates, timings. */
const comparable = (r: Result) => ({ model: r.model, image: r.image, masks: r.masks });

async function problem(res: Response): Promise<{ status: number; code: string; type: string }> {
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  return (await res.json()) as { status: number; code: string; type: string };
}

const dciodvfyMissing = !(await hasTool('dciodvfy'));

/** dciodvfy reports no errors (skipped, with a diagnostic, when dicom3tools is not installed). */
async function assertValid(t: { diagnostic: (m: string) => void }, seg: Uint8Array) {
  if (dciodvfyMissing) return t.diagnostic('dciodvfy missing (Debian dicom3tools): SEG not validated');
  const { errors } = await dciodvfy(seg);
  assert.deepEqual(errors, [], 'dciodvfy reports no errors');
}

describe('POST /segment series mode', () => {
  let repo: { dir: string; remove: () => Promise<void> };
  let svc: InProcess;
  let small: InProcess;
  const log = captureLogger('info');
  before(async () => {
    repo = await modelRepository([MODEL]);
    [svc, small] = await Promise.all([
      startInProcess({ MODEL_REPOSITORY: repo.dir, LOG_LEVEL: 'info' }, { logger: log.logger }),
      startInProcess({ MODEL_REPOSITORY: repo.dir, DICOMWEB_MAX_INSTANCES: '4', DICOMWEB_MAX_FRAMES: '5', BODY_LIMIT_BYTES: '60000' }),
    ]);
  });
  after(async () => {
    await Promise.all([svc?.close(), small?.close()]);
    await repo?.remove();
  });

  test('multipart/related: one result per frame equal to single POSTs, and the SEG (valid, the JSON masks, the manifest\'s codes) kept with the results', async (t) => {
    const s = brainSeries(61, 6, 64);
    // Sent out of order: the answer is in slice order all the same.
    const sent = [3, 0, 5, 1, 4, 2].map((i) => s.sources[i]!);
    const res = await postSeries(svc.url, sent, '?rleFormat=coco&threshold=0.5');
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('content-location'), null, 'the JSON answer is no one resource');
    const body = (await res.json()) as Series;
    assert.equal(body.instances, 6);
    assert.equal(body.results.length, 6);
    assert.deepEqual(
      body.results.map((r) => r.image.sopInstanceUid),
      s.sopInstanceUids,
      'slice order',
    );
    for (let i = 0; i < 6; i++) {
      const single = (await (await postDicom(svc.url, s.sources[i]!, '?rleFormat=coco&threshold=0.5')).json()) as Result;
      assert.deepEqual(comparable(body.results[i]!), comparable(single), `slice ${i}`);
      assert.ok(body.results[i]!.stored);
      const again = (await (await fetch(`${svc.url}/segmentations/${body.results[i]!.id}?rleFormat=coco`)).json()) as Result;
      assert.deepEqual(again.masks, body.results[i]!.masks, 'each frame is stored under its own id');
    }
    const areas = body.results.flatMap((r) => r.masks.map((m) => m.area));
    assert.ok(
      areas.some((a) => a > 0 && a < 64 * 64),
      'partial masks, so the comparisons mean something',
    );
    assert.deepEqual(
      body.seg.segments.map((x) => x.label),
      ['tumour', 'brain'],
    );
    assert.ok(body.seg.location, 'the SEG was stored');

    const got = await fetch(`${svc.url}${body.seg.location}`);
    assert.equal(got.status, 200);
    const segBytes = new Uint8Array(await got.arrayBuffer());
    assert.equal(segBytes.length, body.seg.bytes);
    await assertValid(t, segBytes);
    const seg = readSeg(segBytes);
    assert.equal(seg.sopInstanceUid, body.seg.sopInstanceUid);
    assert.equal(seg.studyInstanceUid, s.studyInstanceUid);
    // The manifest names the tumour's codes; the brain keeps codes.ts's default for its label.
    assert.equal(seg.segments[0]!.category, TUMOUR_CODES.category.CodeMeaning);
    assert.equal(seg.segments[0]!.type, TUMOUR_CODES.type.CodeMeaning);
    const tumourItem = seg.dataset.SegmentSequence[0];
    assert.equal(tumourItem.SegmentedPropertyTypeCodeSequence[0].CodeValue, TUMOUR_CODES.type.CodeValue);
    assert.ok(tumourItem.RecommendedDisplayCIELabValue, 'the palette colour is kept');
    assert.deepEqual([seg.segments[1]!.category, seg.segments[1]!.type], ['Anatomical Structure', 'Brain']);
    // Its frames are the JSON masks.
    body.results.forEach((r) =>
      r.masks.forEach((m, l) => {
        const expected = decodeMask(m.rle.counts, 'coco', 64, 64);
        assert.deepEqual(Array.from(segMaskFor(seg, l + 1, r.image.sopInstanceUid).data), Array.from(expected.data), `${r.image.sopInstanceUid} ${m.label}`);
      }),
    );
  });

  test('Accept: application/dicom answers the one SEG for the series, kept at Content-Location; single-image SEGs carry the manifest\'s codes too', async (t) => {
    const s = brainSeries(62, 4, 64);
    const res = await postSeries(svc.url, s.sources, '', { accept: 'application/dicom' });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('content-type'), 'application/dicom');
    const seg = new Uint8Array(await res.arrayBuffer());
    await assertValid(t, seg);
    const parsed = readSeg(seg);
    assert.deepEqual(new Set(parsed.frames.map((f) => f.sopInstanceUid)).size <= 4, true);
    const location = res.headers.get('content-location');
    assert.match(location ?? '', /^\/segmentations\/[0-9a-f-]{36}\/seg\.dcm$/);
    const again = await fetch(`${svc.url}${location}`);
    assert.deepEqual(new Uint8Array(await again.arrayBuffer()), seg);
 
    assert.equal(parsed.segments[0]!.type, TUMOUR_CODES.type.CodeMeaning, 'the manifest\'s codes');

    // The single-image SEG (core/seg/from-result.ts) carries the manifest's codes too.
    const one = await postDicom(svc.url, s.sources[1]!, '', { accept: 'application/dicom' });
    assert.equal(one.status, 200);
    const oneSeg = new Uint8Array(await one.arrayBuffer());
    await assertValid(t, oneSeg);
    const oneParsed = readSeg(oneSeg);
    assert.deepEqual(
      oneParsed.segments.map((x) => [x.label, x.category, x.type]),
      [
        ['tumour', TUMOUR_CODES.category.CodeMeaning, TUMOUR_CODES.type.CodeMeaning],
        ['brain', 'Anatomical Structure', 'Brain'],
      ],
    );
  });

  test('?frames=all: every frame of one multi-frame instance (legacy SC and enhanced MR), equal to ?frame=k POSTs', async (t) => {
    const s = brainSeries(63, 4, 64);
    for (const [name, mf] of [
      ['legacy multi-frame SC', multiFrameSc(s, 64)],
      ['enhanced multi-frame MR', enhancedMultiFrame(s, 65)],
    ] as const) {
      const res = await postDicom(svc.url, mf.bytes, '?frames=all&rleFormat=coco');
      assert.equal(res.status, 200, `${name}: ${await res.clone().text()}`);
      const body = (await res.json()) as Series;
      assert.equal(body.instances, 1);
      assert.deepEqual(
        body.results.map((r) => r.image.frame),
        [0, 1, 2, 3],
        name,
      );
      for (const r of body.results) {
        const single = (await (await postDicom(svc.url, mf.bytes, `?frame=${r.image.frame}&rleFormat=coco`)).json()) as Result;
        assert.deepEqual(comparable(r), comparable(single), `${name} frame ${r.image.frame}`);
      }
      const seg = await postDicom(svc.url, mf.bytes, '?frames=all', { accept: 'application/dicom' });
      assert.equal(seg.status, 200);
      const bytes = new Uint8Array(await seg.arrayBuffer());
      await assertValid(t, bytes);
      const parsed = readSeg(bytes);
      body.results.forEach((r) =>
        r.masks.forEach((m, l) => {
          const expected = decodeMask(m.rle.counts, 'coco', 64, 64);
          assert.deepEqual(Array.from(segMaskFor(parsed, l + 1, mf.sopInstanceUid, r.image.frame + 1).data), Array.from(expected.data), `${name} frame ${r.image.frame} ${m.label}`);
        }),
      );
    }
    const both = await postDicom(svc.url, multiFrameSc(s, 66).bytes, '?frames=all&frame=1');
    assert.equal(both.status, 400);
    assert.equal((await problem(both)).code, 'VALIDATION');
  });

  test('limits: instances, frames (SERIES_TOO_LARGE) and bytes (BODY_TOO_LARGE) are 413 problems', async () => {
    const s = brainSeries(67, 5, 64);
    const tooMany = await postSeries(small.url, s.sources);
    assert.equal(tooMany.status, 413);
    const p = await problem(tooMany);
    assert.equal(p.code, 'SERIES_TOO_LARGE');
    const frames = await postDicom(small.url, multiFrameSc(brainSeries(68, 6, 64), 69).bytes, '?frames=all');
    assert.equal(frames.status, 413);
    assert.equal((await problem(frames)).code, 'SERIES_TOO_LARGE');
    const big = brainSeries(70, 3, 128); // 3 x ~33 KB > BODY_LIMIT_BYTES 60000
    const bytes = await postSeries(small.url, big.sources);
    assert.equal(bytes.status, 413);
    assert.equal((await problem(bytes)).code, 'BODY_TOO_LARGE');
    const ok = await postSeries(small.url, s.sources.slice(0, 4));
    assert.equal(ok.status, 200, 'at the limits is fine');
  });

  test('mixed sizes 422 MIXED_SIZES, mixed series 422 MIXED_SERIES', async () => {
    const a = brainSeries(71, 3, 64);
    const b = brainSeries(72, 1, 96);
    const header = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(a.sources[0]!.slice().buffer as ArrayBuffer).dict);
    const stray = retag(b.sources[0]!, {
      StudyInstanceUID: a.studyInstanceUid,
      SeriesInstanceUID: a.seriesInstanceUid,
      SOPInstanceUID: newUid(),
      PatientID: header.PatientID,
      FrameOfReferenceUID: header.FrameOfReferenceUID,
    });
    const sizes = await postSeries(svc.url, [...a.sources, stray]);
    assert.equal(sizes.status, 422);
    assert.equal((await problem(sizes)).code, 'MIXED_SIZES');
    const other = brainSeries(73, 2, 64);
    const mixed = await postSeries(svc.url, [...a.sources, ...other.sources]);
    assert.equal(mixed.status, 422);
    const body = await problem(mixed);
    assert.equal(body.code, 'MIXED_SERIES');
    assert.ok(!JSON.stringify(body).includes(a.studyInstanceUid), 'the problem names attributes, not their values');
  });

  test('garbage is a 4xx problem, never a 500', async () => {
    const s = brainSeries(74, 2, 64);
    const cases: Array<[string, () => Promise<Response>, number, string]> = [
      ['a part that is not DICOM', () => postSeries(svc.url, [s.sources[0]!, new TextEncoder().encode('hello, not a DICOM file at all')]), 422, 'NOT_DICOM'],
      ['random bytes as the only part', () => postSeries(svc.url, [Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)]), 422, ''],
      ['an empty part', () => postSeries(svc.url, [new Uint8Array(0)]), 422, ''],
      ['a truncated instance', () => postSeries(svc.url, [s.sources[0]!, s.sources[1]!.subarray(0, s.sources[1]!.length - 3000)]), 422, ''],
      [
        'no boundary parameter',
        () => fetch(`${svc.url}/segment`, { method: 'POST', headers: { 'content-type': 'multipart/related; type="application/dicom"' }, body: related(s.sources).body }),
        400,
        'BAD_MULTIPART',
      ],
      [
        'a boundary that never occurs',
        () => fetch(`${svc.url}/segment`, { method: 'POST', headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=nope' }, body: related(s.sources).body }),
        400,
        'BAD_MULTIPART',
      ],
      [
        'a part without its closing boundary',
        () => {
          const { body, contentType } = related(s.sources);
          return fetch(`${svc.url}/segment`, { method: 'POST', headers: { 'content-type': contentType }, body: body.subarray(0, body.length - 200) });
        },
        400,
        'BAD_MULTIPART',
      ],
      [
        'type="application/json"',
        () => {
          const { body, contentType } = related(s.sources);
          return fetch(`${svc.url}/segment`, { method: 'POST', headers: { 'content-type': contentType.replace('application/dicom', 'application/json') }, body });
        },
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
      [
        'a text/plain part',
        () => {
          const { body, contentType } = buildMultipart([s.sources[0]!], 'text/plain');
          return fetch(`${svc.url}/segment`, { method: 'POST', headers: { 'content-type': contentType.replace('type="text/plain"', 'type="application/dicom"') }, body });
        },
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
      ['an empty body', () => fetch(`${svc.url}/segment`, { method: 'POST', headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=x' }, body: new Uint8Array(0) }), 400, ''],
      ['frames=all with multipart/form-data', () => {
        const form = new FormData();
        form.append('file', new Blob([s.sources[0]!], { type: 'application/dicom' }), 'a.dcm');
        return fetch(`${svc.url}/segment?frames=all`, { method: 'POST', body: form });
      }, 400, 'VALIDATION'],
      ['frames=some', () => postDicom(svc.url, s.sources[0]!, '?frames=some'), 400, 'VALIDATION'],
    ];
    for (const [name, send, status, code] of cases) {
      const res = await send();
      const p = await problem(res);
      assert.ok(res.status >= 400 && res.status < 500, `${name}: ${res.status} ${JSON.stringify(p)}`);
      assert.equal(res.status, status, `${name}: ${JSON.stringify(p)}`);
      if (code) assert.equal(p.code, code, name);
      else assert.ok(p.code, `${name}: has a code`);
    }
  });

  test('logs hold counts and UIDs of the SEG, never patient attributes; a 20-slice 256x256 series (diagnostic)', async (t) => {
    const s = brainSeries(75, 20, 256);
    const { body, contentType } = related(s.sources);
    const t0 = performance.now();
    const res = await fetch(`${svc.url}/segment`, { method: 'POST', headers: { 'content-type': contentType }, body });
    const ms = performance.now() - t0;
    assert.equal(res.status, 200);
    const json = (await res.json()) as Series;
    const t1 = performance.now();
    const seg = await fetch(`${svc.url}/segment`, { method: 'POST', headers: { 'content-type': contentType, accept: 'application/dicom' }, body });
    const segBytes = new Uint8Array(await seg.arrayBuffer());
    const segMs = performance.now() - t1;
    t.diagnostic(
      `20 x 256^2 MR (${(body.length / 1e6).toFixed(2)} MB multipart): JSON ${ms.toFixed(0)} ms (engine ${json.timings.segmentMs.toFixed(0)} ms, SEG write ${json.timings.writeMs.toFixed(0)} ms, ${json.seg.frames} SEG frames, ${json.seg.bytes} bytes); SEG answer ${segMs.toFixed(0)} ms, ${segBytes.length} bytes`,
    );
    await assertValid(t, segBytes);
    const text = log.text();
    assert.match(text, /series segmented/);
    const header = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(s.sources[0]!.slice().buffer as ArrayBuffer).dict);
    for (const v of [SYNTHETIC_PATIENT_NAME, header.PatientID, header.PatientBirthDate, header.AccessionNumber, s.studyInstanceUid]) {
      assert.ok(!text.includes(String(v)), `the log holds no ${String(v)}`);
    }
  });
});
