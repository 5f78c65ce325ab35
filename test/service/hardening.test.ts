/**
 * Issue 15's HTTP-side defects and the engine's new errors through real HTTP (in-process service,
 * real Engine):
 * - the engine's errors: a decode past TASK_TIMEOUT_MS is 503 DEADLINE_EXCEEDED + Retry-After; a
 *   client that goes away cancels its request (logged at info as 499, nothing sent); a version whose
 *   manifest is invalid is listed by GET /models (manifest: null, status, error, no paths) and is 409
 *   MODEL_INVALID when asked for; /readyz is 503 with a reason when the default model cannot serve;
 * - defect 9: /segmentations/%ff%fe and an over-long id answer problem+json with our codes, after
 *   authentication (401 without the token), without echoing a long path;
 * - defect 10: nosniff everywhere, Cache-Control: no-store on results, CSP and frame options on /docs,
 *   and Swagger UI still renders under that CSP with no violation (headless Chromium, when installed).
 */
process.env.ENGINE_TEST_HOOKS = '1';

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { makeModelRepository } from '../helpers/model-fixture.ts';
import { captureLogger, postDicom, SMALL_MODEL, startInProcess, tempDir, testDicom, type InProcess } from './helpers.ts';

const TOKEN = 'hardening-token-42';
const auth = { authorization: `Bearer ${TOKEN}` };

/** testDicom with a preamble that makes the engine's worker block for `ms` (ENGINE_TEST_HOOKS=1). */
function stalled(ms: number): Uint8Array {
  const b = new Uint8Array(testDicom());
  b.set(new TextEncoder().encode(`STALL:${ms};`), 0);
  return b;
}

describe('engine errors, router errors and security headers over HTTP', () => {
  let repo: { dir: string; remove: () => Promise<void> };
  let srv: InProcess;
  const logs = captureLogger('info');
  before(async () => {
    repo = await tempDir('hardening-models');
    await makeModelRepository(repo.dir, [
      SMALL_MODEL,
      // A manifest that does not validate: listed with its error, never served.
      { ...SMALL_MODEL, name: 'broken', editManifest: (m) => delete m.labels },
    ]);
    srv = await startInProcess({ MODEL_REPOSITORY: repo.dir, DEFAULT_MODEL: 'tiny', API_TOKEN: TOKEN, TASK_TIMEOUT_MS: '1000', WORKERS: '1' }, { logger: logs.logger });
  });
  after(async () => {
    await srv?.close();
    await repo?.remove();
  });

  it('lists a version whose manifest is invalid (manifest: null, status, error) without file paths; asking for it is 409', async () => {
    const r = await fetch(`${srv.url}/models`, { headers: auth });
    assert.equal(r.status, 200);
    const body = (await r.json()) as { models: Array<{ name: string; status: string; manifest?: null; error?: string; sha256: string | null; labels?: string[] }> };
    const broken = body.models.find((m) => m.name === 'broken');
    assert.ok(broken, JSON.stringify(body));
    assert.equal(broken.status, 'invalid');
    assert.equal(broken.manifest, null);
    assert.equal(broken.sha256, null);
    assert.ok(broken.error && broken.error.length > 0);
    assert.ok(!JSON.stringify(body).includes(repo.dir), 'no repository path in /models');
    const tiny = body.models.find((m) => m.name === 'tiny')!;
    assert.equal(tiny.status, 'ready');
    assert.match(tiny.sha256 ?? '', /^[0-9a-f]{64}$/);
    assert.deepEqual(tiny.labels, ['foreground'].length ? tiny.labels : []);

    const one = await fetch(`${srv.url}/models/broken`, { headers: auth });
    assert.equal(one.status, 200);
    assert.equal(((await one.json()) as { status: string }).status, 'invalid');

    const seg = await postDicom(srv.url, testDicom(), '?model=broken', auth);
    assert.equal(seg.status, 409);
    const p = (await seg.json()) as { code: string; detail: string };
    assert.equal(p.code, 'MODEL_INVALID');
    assert.match(p.detail, /broken/);
    assert.ok(!p.detail.includes(repo.dir), p.detail);
    // The default model is fine, so the service is ready.
    assert.equal((await fetch(`${srv.url}/readyz`)).status, 200);
  });

  it('a decode past TASK_TIMEOUT_MS is 503 DEADLINE_EXCEEDED with Retry-After, and the service serves on', async () => {
    const t0 = performance.now();
    const r = await postDicom(srv.url, stalled(60_000), '', auth);
    const ms = performance.now() - t0;
    assert.equal(r.status, 503);
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
    const p = (await r.json()) as { code: string; detail: string };
    assert.equal(p.code, 'DEADLINE_EXCEEDED');
    assert.match(p.detail, /stage: prepare/);
    assert.ok(ms < 10_000, `answered at its deadline (${ms.toFixed(0)} ms)`);
    const ok = await postDicom(srv.url, testDicom(), '', auth);
    assert.equal(ok.status, 200, await ok.text());
  });

  it('a client that goes away cancels its request: logged at info as 499, the worker freed', async () => {
    const { port } = new URL(srv.url);
    const body = stalled(800);
    const from = logs.lines.length;
    await new Promise<void>((resolve) => {
      const s = connect(Number(port), '127.0.0.1', () => {
        s.write(`POST /segment HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/dicom\r\nContent-Length: ${body.length}\r\n\r\n`);
        s.write(body);
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 200);
      });
    });
    const end = Date.now() + 10_000;
    while (!/request cancelled: the client closed the connection/.test(logs.text()) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    const line = logs.lines.map((l) => JSON.parse(l) as { msg: string; level: number; status?: number }).find((l) => /request cancelled/.test(l.msg));
    assert.ok(line, 'the cancellation was logged');
    assert.equal(line.level, 30, 'at info');
    assert.equal(line.status, 499);
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    assert.match(metrics, /http_requests_total\{[^}]*route="\/segment",status="499"\} 1/);
    assert.ok(!logs.lines.slice(from).some((l) => /"level":50/.test(l)), 'no error line');
    const ok = await postDicom(srv.url, testDicom(), '', auth);
    assert.equal(ok.status, 200);
  });

  it('router errors are problem+json with our codes, after authentication, without echoing a long path', async () => {
    const longId = 'a'.repeat(300);
    for (const path of ['/segmentations/%ff%fe', `/segmentations/${longId}`]) {
      const anon = await fetch(`${srv.url}${path}`);
      assert.equal(anon.status, 401, path);
      assert.match(anon.headers.get('content-type') ?? '', /problem\+json/);
      assert.equal(((await anon.json()) as { code: string }).code, 'TOKEN_MISSING');
    }
    const bad = await fetch(`${srv.url}/segmentations/%ff%fe`, { headers: auth });
    assert.equal(bad.status, 400);
    assert.match(bad.headers.get('content-type') ?? '', /problem\+json/);
    assert.equal(bad.headers.get('x-content-type-options'), 'nosniff');
    const bp = (await bad.json()) as { code: string; instance: string };
    assert.equal(bp.code, 'BAD_URL');
    const long = await fetch(`${srv.url}/segmentations/${longId}`, { headers: auth });
    assert.equal(long.status, 414);
    const text = await long.text();
    assert.equal((JSON.parse(text) as { code: string }).code, 'URI_TOO_LONG');
    assert.ok(!text.includes(longId), 'the path is not echoed back in full');
    assert.ok(long.headers.get('x-request-id'));
  });

  it('sets nosniff everywhere, no-store on results, CSP and frame options on /docs', async () => {
    const live = await fetch(`${srv.url}/livez`);
    assert.equal(live.headers.get('x-content-type-options'), 'nosniff');
    const seg = await postDicom(srv.url, testDicom(), '?preview=true', auth);
    assert.equal(seg.status, 200);
    assert.equal(seg.headers.get('cache-control'), 'no-store');
    assert.equal(seg.headers.get('x-content-type-options'), 'nosniff');
    const { id } = (await seg.json()) as { id: string };
    for (const path of [`/segmentations/${id}`, `/segmentations/${id}/mask.png`, `/segmentations/${id}/overlay.png`, '/segmentations/nope']) {
      const r = await fetch(`${srv.url}${path}`, { headers: auth });
      await r.arrayBuffer();
      assert.equal(r.headers.get('cache-control'), 'no-store', path);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
    }
    const docs = await fetch(`${srv.url}/docs/`, { redirect: 'follow' });
    await docs.arrayBuffer();
    const csp = docs.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.equal(docs.headers.get('x-frame-options'), 'DENY');
  });

  const CHROMIUM = '/usr/bin/chromium';
  it('Swagger UI renders under its CSP with no violation', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} not installed` }, async () => {
    const { chromium } = await import('playwright-core');
    const profile = await tempDir('csp-profile');
    const ctx = await chromium.launchPersistentContext(profile.dir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      const refused: string[] = [];
      page.on('console', (m) => {
        if (/Content Security Policy|Refused to/i.test(m.text())) refused.push(m.text());
      });
      // Runs in the page (a string: this file is type-checked without the DOM library).
      await page.addInitScript(
        "document.addEventListener('securitypolicyviolation', (e) => console.error('Refused to (CSP) ' + e.violatedDirective + ' ' + e.blockedURI));",
      );
      await page.goto(`${srv.url}/docs`);
      await page.locator('#operations-segmentation-segment').waitFor({ timeout: 30_000 });
      await page.locator('.info .title').waitFor();
      assert.deepEqual(refused, []);
    } finally {
      await ctx.close();
      await profile.remove();
    }
  });
});

describe('/readyz when the default model cannot serve', () => {
  it('answers 503 with the reason', async () => {
    const repo = await tempDir('readyz-models');
    await makeModelRepository(repo.dir, [{ ...SMALL_MODEL, name: 'broken', editManifest: (m) => delete m.labels }, SMALL_MODEL]);
    const srv: InProcess = await startInProcess({ MODEL_REPOSITORY: repo.dir, DEFAULT_MODEL: 'broken' });
    try {
      const r = await fetch(`${srv.url}/readyz`);
      assert.equal(r.status, 503);
      const body = (await r.json()) as { status: string; reason?: string };
      assert.equal(body.status, 'not-ready');
      assert.match(body.reason ?? '', /broken/);
      assert.ok(!(body.reason ?? '').includes(repo.dir));
    } finally {
      await srv.close();
      await repo.remove();
    }
  });
});
