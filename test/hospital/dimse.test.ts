/**
 * DIMSE in and out against real peers: dcmtk's storescu / echoscu and Debian's Orthanc (its DICOM side),
 * a real Engine (a small random-weight UNet) and the service's DIMSE plugin (services/dimse).
 *   1. storescu pushes a 20-slice 256x256 MR series -> the SCP -> segmentInstances -> the SEG by C-STORE
 *      into Orthanc; read back from Orthanc, its frames decode to the Engine's masks for the same images.
 *   2. Orthanc pushes a series it holds to the service (REST /modalities/{name}/store) -> SEG in Orthanc.
 *   3. An unknown calling AE title is rejected when DIMSE_ALLOWED_CALLING_AETS is set; nothing segmented.
 *   4. Destination down: retried, logged with the SEG's UID, counted; the service keeps serving.
 *   5. A series over the per-series limit: its extra instances refused (A700), the series not segmented.
 * Also: the association timeout, the association limit, DIMSE_* validation, and the plugin as buildApp
 * registers it (off by default; rejecting while the engine is not started; closed with the app).
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Fastify, { type FastifyInstance } from 'fastify';
import dcmjsDimse from 'dcmjs-dimse';
import { captureLogger, startEngine, type EngineFixture, type LogLine } from '../../core/engine/testing/engine-fixtures.ts';
import { masksEqual } from '../../core/mask.ts';
import { readSeg, segMaskFor } from '../../core/seg/read-seg.ts';
import { brainSeries, type BrainSeries } from '../../core/seg/testing.ts';
import { buildApp } from '../../services/app.ts';
import { ConfigError, loadConfig } from '../../services/config.ts';
import dimse from '../../services/dimse/plugin.ts';
import { Lifecycle } from '../../services/lifecycle.ts';
import { createMetrics, type ServiceMetrics } from '../../services/metrics.ts';
import { makeModelRepository } from '../helpers/model-fixture.ts';
import {
  freePort,
  instanceFile,
  orthancAvailable,
  orthancSeriesId,
  registerModality,
  segInstanceIds,
  startOrthanc,
  storeToModality,
  uploadInstance,
  type OrthancHandle,
} from '../helpers/orthanc.ts';

const MODEL = { name: 'tiny-seg', version: '1', size: 64, depth: 2, baseChannels: 4, seed: 3, labels: ['tumour', 'brain'], classes: 2, threshold: 0.5 };
const hasTool = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const missing = [orthancAvailable() ? '' : 'orthanc + orthanc-dicomweb', hasTool('storescu') ? '' : 'storescu (dcmtk)', hasTool('echoscu') ? '' : 'echoscu (dcmtk)'].filter(Boolean);
const skip = missing.length > 0 ? `not installed: ${missing.join(', ')} (run scripts/test-deps.sh)` : false;

let orthanc: OrthancHandle;
let fx: EngineFixture;
let work: string;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => void unhandled.push(e);

before(async () => {
  if (skip) return;
  process.on('unhandledRejection', onUnhandled);
  work = await mkdtemp(join(tmpdir(), 'dimse-test-'));
  [orthanc, fx] = await Promise.all([startOrthanc(), startEngine([MODEL], { workers: 1, maxBatch: 8 })]);
});
after(async () => {
  process.off('unhandledRejection', onUnhandled);
  await Promise.all([orthanc?.stop(), fx?.cleanup(), work ? rm(work, { recursive: true, force: true }) : undefined]);
});

interface DimseApp {
  app: FastifyInstance;
  port: number;
  lines: LogLine[];
  metrics: ServiceMetrics;
}

/** The DIMSE plugin on a bare app sharing the test's engine, configured through loadConfig like the service. */
async function dimseApp(t: TestContext, env: Record<string, string> = {}): Promise<DimseApp> {
  const config = loadConfig({
    HOST: '127.0.0.1',
    DIMSE_PORT: '0',
    DIMSE_DESTINATION: `${orthanc.aet}@127.0.0.1:${orthanc.dicomPort}`,
    DIMSE_ALLOWED_CALLING_AETS: `STORESCU,ECHOSCU,${orthanc.aet}`,
    DIMSE_SERIES_IDLE_MS: '3000',
    DIMSE_SEND_RETRY_DELAY_MS: '50',
    ...env,
  });
  const { logger, lines } = captureLogger('debug');
  const app = Fastify({ loggerInstance: logger });
  const lifecycle = new Lifecycle();
  lifecycle.attach(fx.engine);
  const metrics = createMetrics({ defaultMetrics: false });
  app.decorate('config', config);
  app.decorate('metrics', metrics);
  app.decorate('lifecycle', lifecycle);
  await app.register(dimse);
  t.after(() => app.close());
  await app.ready();
  return { app: app as unknown as FastifyInstance, port: app.dimse!.port, lines, metrics };
}

/** A counter's value for one outcome (0 when never incremented). */
async function count(m: ServiceMetrics, name: string, outcome: string): Promise<number> {
  const metric = m.registry.getSingleMetric(`unet_${name}`);
  const values = (await metric!.get()).values;
  return values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

async function writeSeries(s: BrainSeries, name: string): Promise<string[]> {
  const files: string[] = [];
  for (const [i, bytes] of s.sources.entries()) {
    const f = join(work, `${name}-${String(i).padStart(3, '0')}.dcm`);
    await writeFile(f, bytes);
    files.push(f);
  }
  return files;
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    child.on('close', (code) => resolve({ code, out }));
  });
}

const storescu = (port: number, files: string[], aet = 'STORESCU', aec = 'UNETSEG') => run('storescu', ['-v', '-aet', aet, '-aec', aec, '127.0.0.1', String(port), ...files]);
const echoscu = (port: number, aet = 'ECHOSCU') => run('echoscu', ['-aet', aet, '-aec', 'UNETSEG', '127.0.0.1', String(port)]);

async function waitForSeg(study: string, timeoutMs = 45_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ids = await segInstanceIds(orthanc, study);
    if (ids.length > 0) return ids[0]!;
    if (Date.now() > end) throw new Error(`no SEG in Orthanc for the study within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every frame of the SEG decodes to the Engine's mask of the same source image and label. */
async function assertSegMatchesEngine(segBytes: Uint8Array, s: BrainSeries): Promise<number[]> {
  const seg = readSeg(segBytes);
  assert.equal(seg.studyInstanceUid, s.studyInstanceUid);
  assert.deepEqual(seg.segments.map((x) => x.label), ['tumour', 'brain']);
  const areas: number[] = [];
  for (let i = 0; i < s.sources.length; i++) {
    const direct = await fx.engine.segment({ dicom: s.sources[i]!, model: MODEL.name });
    direct.masks.forEach((m, l) => {
      areas.push(m.area);
      assert.ok(masksEqual(segMaskFor(seg, l + 1, s.sopInstanceUids[i]!), m.mask), `slice ${i} ${m.label}`);
    });
  }
  return areas;
}

describe('DIMSE', { skip }, () => {
  test('storescu -> SCP -> SEG by C-STORE into Orthanc; the SEG decodes to the Engine\'s masks', async (t) => {
    const d = await dimseApp(t);
    const s = brainSeries(71, 20, 256);
    const files = await writeSeries(s, 'rt');
    const t0 = performance.now();
    const pushed = await storescu(d.port, files);
    const tPushed = performance.now();
    assert.equal(pushed.code, 0, pushed.out);
    const id = await waitForSeg(s.studyInstanceUid);
    const tSeg = performance.now();
    t.diagnostic(`DIMSE round trip, 20 x 256^2 MR: storescu ${(tPushed - t0).toFixed(0)} ms, storescu start -> SEG in Orthanc ${(tSeg - t0).toFixed(0)} ms`);
    await d.app.dimse!.settled();
    const stored = d.lines.find((l) => l.msg === 'SEG stored at the destination');
    assert.ok(stored, 'the send is logged');
    t.diagnostic(`service timings: ${JSON.stringify(d.lines.find((l) => l.msg === 'series segmented; sending its SEG')?.timings)} ${JSON.stringify(stored.timings)}`);
    const areas = await assertSegMatchesEngine(await instanceFile(orthanc, id), s);
    assert.ok(areas.some((a) => a > 0 && a < 256 * 256), 'the model gives partial masks, so the comparison means something');
    assert.equal(await count(d.metrics, 'dimse_instances_received_total', 'stored'), 20);
    assert.equal(await count(d.metrics, 'dimse_series_total', 'segmented'), 1);
    assert.equal(await count(d.metrics, 'dimse_seg_sends_total', 'ok'), 1);
    assert.equal(d.app.dimse!.stats().heldBytes, 0, 'nothing held once the SEG is sent');
    // No patient attributes in the log (the series carries SYNTHETIC^PHANTOM and a patient ID).
    const text = JSON.stringify(d.lines);
    assert.doesNotMatch(text, /SYNTHETIC|PHANTOM|19700101/);
  });

  test('Orthanc pushes a series to the service (a registered modality); the SEG comes back into Orthanc', async (t) => {
    const d = await dimseApp(t);
    const s = brainSeries(72, 6, 128);
    for (const b of s.sources) await uploadInstance(orthanc, b);
    await registerModality(orthanc, 'unetseg', { aet: 'UNETSEG', host: '127.0.0.1', port: d.port });
    const seriesId = await orthancSeriesId(orthanc, s.seriesInstanceUid);
    assert.ok(seriesId);
    await storeToModality(orthanc, 'unetseg', [seriesId]);
    const id = await waitForSeg(s.studyInstanceUid);
    await assertSegMatchesEngine(await instanceFile(orthanc, id), s);
    await d.app.dimse!.settled();
    const accepted = d.lines.find((l) => l.msg === 'DIMSE association accepted');
    assert.equal(accepted?.callingAe, orthanc.aet);
    assert.equal(await count(d.metrics, 'dimse_instances_received_total', 'stored'), 6);
  });

  test('an unknown calling AE title is rejected when DIMSE_ALLOWED_CALLING_AETS is set; nothing is segmented', async (t) => {
    const d = await dimseApp(t);
    const files = await writeSeries(brainSeries(73, 2, 64), 'intruder');
    const r = await storescu(d.port, files, 'INTRUDER');
    assert.notEqual(r.code, 0, 'storescu fails');
    assert.match(r.out, /Association Rejected|Calling AE Title Not Recognized/i);
    // The called AE title is checked too.
    const wrongCalled = await storescu(d.port, files, 'STORESCU', 'SOMEONEELSE');
    assert.notEqual(wrongCalled.code, 0);
    assert.equal((await echoscu(d.port)).code, 0, 'an allowed AE title still gets through');
    await d.app.dimse!.settled();
    assert.equal(await count(d.metrics, 'dimse_associations_total', 'rejected'), 2);
    assert.equal(await count(d.metrics, 'dimse_instances_received_total', 'stored'), 0);
    assert.equal(await count(d.metrics, 'dimse_series_total', 'segmented'), 0);
    const rejected = d.lines.filter((l) => l.msg === 'DIMSE association rejected');
    assert.equal(rejected[0]?.callingAe, 'INTRUDER');
    assert.match(String(rejected[0]?.reason), /DIMSE_ALLOWED_CALLING_AETS/);
  });

  test('a connection that never asks for an association is closed after DIMSE_ASSOCIATION_TIMEOUT_MS', async (t) => {
    const d = await dimseApp(t, { DIMSE_ASSOCIATION_TIMEOUT_MS: '300' });
    const t0 = performance.now();
    const closedAfter = await new Promise<number>((resolve, reject) => {
      const c = connect(d.port, '127.0.0.1');
      c.on('error', () => undefined);
      c.once('close', () => resolve(performance.now() - t0));
      setTimeout(() => (c.destroy(), reject(new Error('still open after 5 s'))), 5000).unref();
    });
    // The library checks its timeouts once a second.
    assert.ok(closedAfter >= 300 && closedAfter < 3000, `closed after ${closedAfter.toFixed(0)} ms`);
    assert.equal(d.app.dimse!.stats().associations, 0);
  });

  test('over DIMSE_MAX_ASSOCIATIONS an association is rejected (transient); once one ends, the next gets in', async (t) => {
    const d = await dimseApp(t, { DIMSE_MAX_ASSOCIATIONS: '1' });
    // A library client that keeps its association open 1.5 s after its C-ECHO.
    const holder = new dcmjsDimse.Client();
    holder.addRequest(new dcmjsDimse.requests.CEchoRequest());
    const held = new Promise<void>((resolve) => holder.on('closed', () => resolve()));
    const accepted = new Promise<void>((resolve) => holder.on('associationAccepted', () => resolve()));
    holder.send('127.0.0.1', d.port, 'ECHOSCU', 'UNETSEG', { associationLingerTimeout: 1500 });
    await accepted;
    const second = await echoscu(d.port);
    assert.notEqual(second.code, 0, 'rejected while the first is open');
    assert.match(second.out, /Association Rejected|Local Limit Exceeded/i, second.out);
    await held;
    assert.equal((await echoscu(d.port)).code, 0);
    assert.equal(await count(d.metrics, 'dimse_associations_total', 'rejected'), 1);
    assert.equal(await count(d.metrics, 'dimse_associations_total', 'accepted'), 2);
  });

  test('destination down: the SEG send is retried, then logged with its UID and counted; the service keeps serving', async (t) => {
    const down = await freePort();
    const d = await dimseApp(t, { DIMSE_DESTINATION: `NOBODY@127.0.0.1:${down}`, DIMSE_SEND_RETRIES: '2' });
    const files = await writeSeries(brainSeries(74, 3, 64), 'down');
    const pushed = await storescu(d.port, files);
    assert.equal(pushed.code, 0, pushed.out);
    await d.app.dimse!.settled();
    assert.equal(await count(d.metrics, 'dimse_seg_sends_total', 'failed'), 1);
    assert.equal(await count(d.metrics, 'dimse_seg_sends_total', 'ok'), 0);
    assert.equal(d.lines.filter((l) => l.msg === 'SEG send failed; retrying').length, 2);
    const lost = d.lines.find((l) => l.level === 50 && /SEG not delivered/.test(l.msg));
    assert.ok(lost, 'an error line says the SEG was not delivered');
    assert.match(String(lost.segSopInstanceUid), /^2\.25\.\d+$/);
    assert.equal(lost.attempts, 3);
    assert.equal(lost.reason, 'unreachable');
    // Still serving: C-ECHO, and another series is received (and its send fails the same way).
    assert.equal((await echoscu(d.port)).code, 0);
    const again = await storescu(d.port, await writeSeries(brainSeries(75, 2, 64), 'down2'));
    assert.equal(again.code, 0, again.out);
    await d.app.dimse!.settled();
    assert.equal(await count(d.metrics, 'dimse_seg_sends_total', 'failed'), 2);
    assert.equal(d.app.dimse!.stats().heldBytes, 0);
    assert.deepEqual(unhandled, [], 'no unhandled rejection');
  });

  test('a series over the per-series limit: its extra instances are refused (A700), it is not segmented', async (t) => {
    const d = await dimseApp(t, { DICOMWEB_MAX_INSTANCES: '3' });
    const s = brainSeries(76, 5, 64);
    const r = await storescu(d.port, await writeSeries(s, 'limit'));
    // storescu sends 3, gets A700 for the 4th and stops (it halts on a refusal).
    assert.match(r.out, /Refused: ?Out ?Of ?Resources/i, r.out);
    await d.app.dimse!.settled();
    assert.equal(await count(d.metrics, 'dimse_instances_received_total', 'stored'), 3);
    assert.equal(await count(d.metrics, 'dimse_instances_received_total', 'refused'), 1);
    assert.equal(await count(d.metrics, 'dimse_series_total', 'refused'), 1);
    assert.equal(await count(d.metrics, 'dimse_series_total', 'segmented'), 0);
    assert.equal(await count(d.metrics, 'dimse_seg_sends_total', 'ok') + (await count(d.metrics, 'dimse_seg_sends_total', 'failed')), 0);
    const over = d.lines.find((l) => /series over the limit/.test(l.msg));
    assert.equal(over?.seriesInstanceUid, s.seriesInstanceUid);
    assert.match(String(over?.reason), /over 3 instances/);
    assert.ok(d.lines.some((l) => l.msg === 'series not segmented: series over 3 instances'));
    assert.deepEqual(await segInstanceIds(orthanc, s.studyInstanceUid), []);
    assert.equal(d.app.dimse!.stats().heldBytes, 0);
  });

  test('buildApp: DIMSE off by default; with DIMSE_PORT it listens on ready, rejects while the engine is not started, closes with the app', async () => {
    const models = await mkdtemp(join(tmpdir(), 'dimse-models-'));
    await makeModelRepository(models, [MODEL]);
    const base = { HOST: '127.0.0.1', MODEL_REPOSITORY: models, LOG_LEVEL: 'silent' };
    const off = await buildApp({ config: loadConfig(base), metrics: createMetrics({ defaultMetrics: false }) });
    await off.ready();
    assert.equal(off.dimse, undefined);
    await off.close();

    const metrics = createMetrics({ defaultMetrics: false });
    const app = await buildApp({ config: loadConfig({ ...base, DIMSE_PORT: '0', DIMSE_DESTINATION: `${orthanc.aet}@127.0.0.1:${orthanc.dicomPort}` }), metrics });
    await app.ready();
    const port = app.dimse!.port;
    assert.ok(port > 0);
    const echo = await echoscu(port);
    assert.notEqual(echo.code, 0, 'models still loading: the association is rejected (transient)');
    assert.equal(await count(metrics, 'dimse_associations_total', 'rejected'), 1);
    await app.close();
    const refused = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), resolve(false)));
      c.once('error', () => resolve(true));
    });
    assert.ok(refused, 'the SCP port is closed with the app');
    await rm(models, { recursive: true, force: true });
  });
});

test('DIMSE_* configuration: off by default, parsed, and a bad value names its variable', () => {
  const off = loadConfig({});
  assert.equal(off.dimse.port, undefined);
  assert.equal(off.dimse.aeTitle, 'UNETSEG');
  assert.equal(off.dimse.maxInstances, off.dicomweb.maxInstances, 'one series limit for every route');
  const on = loadConfig({ DIMSE_PORT: '11112', DIMSE_DESTINATION: 'PACS@pacs.example:104', DIMSE_ALLOWED_CALLING_AETS: ' MODALITY1, PACS ', DICOMWEB_MAX_FRAMES: '50' });
  assert.deepEqual(on.dimse.destination, { aeTitle: 'PACS', host: 'pacs.example', port: 104 });
  assert.deepEqual(on.dimse.allowedCallingAets, ['MODALITY1', 'PACS']);
  assert.equal(on.dimse.host, '0.0.0.0');
  assert.equal(on.dimse.maxFrames, 50);
  const bad: Array<[Record<string, string>, string]> = [
    [{ DIMSE_PORT: '11112' }, 'DIMSE_DESTINATION'],
    [{ DIMSE_PORT: '11112', DIMSE_DESTINATION: 'pacs.example:104' }, 'DIMSE_DESTINATION'],
    [{ DIMSE_PORT: '70000', DIMSE_DESTINATION: 'A@h:1' }, 'DIMSE_PORT'],
    [{ DIMSE_AE_TITLE: 'MUCH_TOO_LONG_AE_TITLE' }, 'DIMSE_AE_TITLE'],
    [{ DIMSE_ALLOWED_CALLING_AETS: 'OK,BAD\\AE' }, 'DIMSE_ALLOWED_CALLING_AETS'],
    [{ DIMSE_MAX_ASSOCIATIONS: '0' }, 'DIMSE_MAX_ASSOCIATIONS'],
    [{ DIMSE_SERIES_IDLE_MS: 'soon' }, 'DIMSE_SERIES_IDLE_MS'],
  ];
  for (const [env, variable] of bad) {
    assert.throws(
      () => loadConfig(env),
      (e: unknown) => e instanceof ConfigError && e.variable === variable && e.message.startsWith(`invalid configuration: ${variable} `),
      JSON.stringify(env),
    );
  }
});
