/**
 * CORS for browser viewers (CORS_ORIGINS, services/cors.ts): preflights are answered before the token
 * check; allowed origins get Access-Control-Allow-Origin and the exposed headers on every answer (401s
 * and problems included); refused origins and requests without Origin get no CORS headers; unset =
 * no CORS at all; `*` allows any origin; a bad value stops the start-up naming CORS_ORIGINS.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { buildApp, type App } from '../../services/app.ts';
import { ConfigError, loadConfig } from '../../services/config.ts';
import { MemoryResultStore } from '../../services/store/memory.ts';
import { modelRepository, startInProcess, testDicom, type InProcess } from './helpers.ts';

const TOKEN = 'cors-test-token-0123';
const VIEWER = 'https://viewer.example.org';
const LOCAL = 'http://localhost:3000';
const EVIL = 'https://evil.example.com';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Plain node:http (fetch would not send a preflight's Origin the way a browser does). */
function send(url: string, method: string, path: string, headers: Record<string, string>, body?: Uint8Array): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method, headers: body ? { ...headers, 'content-length': String(body.length) } : headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const list = (v: string | string[] | undefined) =>
  String(v ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);

describe('CORS', () => {
  let repo: { dir: string; remove: () => Promise<void> };
  let svc: InProcess;
  before(async () => {
    repo = await modelRepository();
    svc = await startInProcess({ MODEL_REPOSITORY: repo.dir, API_TOKEN: TOKEN, CORS_ORIGINS: `${VIEWER}, ${LOCAL}` });
  });
  after(async () => {
    await svc?.close();
    await repo?.remove();
  });

  it('answers an allowed origin\'s preflight 204 without the token, allowing Authorization and the OIP binary header', async () => {
    const r = await send(svc.url, 'OPTIONS', '/segment', { origin: VIEWER, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' });
    assert.equal(r.status, 204, r.body);
    assert.equal(r.headers['access-control-allow-origin'], VIEWER);
    assert.ok(list(r.headers['access-control-allow-methods']).includes('post'));
    const allowed = list(r.headers['access-control-allow-headers']);
    for (const h of ['authorization', 'content-type', 'accept', 'inference-header-content-length']) assert.ok(allowed.includes(h), h);
    assert.equal(r.headers['access-control-max-age'], '600');
    assert.ok(list(r.headers.vary).includes('origin'), 'Vary: Origin (the answer depends on it)');
    assert.equal(r.headers['access-control-allow-credentials'], undefined, 'no cookies: the token travels in Authorization');
  });

  it('gives an allowed origin the CORS headers on a simple request, a 401 and a segmentation (Content-Location exposed)', async () => {
    const live = await send(svc.url, 'GET', '/livez', { origin: LOCAL });
    assert.equal(live.status, 200);
    assert.equal(live.headers['access-control-allow-origin'], LOCAL);
    const exposed = list(live.headers['access-control-expose-headers']);
    for (const h of ['content-location', 'location', 'inference-header-content-length', 'x-request-id', 'retry-after']) assert.ok(exposed.includes(h), h);

    const denied = await send(svc.url, 'GET', '/models', { origin: VIEWER });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers['access-control-allow-origin'], VIEWER, 'the page can read why it was refused');
    assert.match(String(denied.headers['content-type']), /application\/problem\+json/);

    const seg = await send(svc.url, 'POST', '/segment', { origin: VIEWER, authorization: `Bearer ${TOKEN}`, 'content-type': 'application/dicom' }, testDicom({ rows: 64, columns: 64 }));
    assert.equal(seg.status, 200, seg.body);
    assert.equal(seg.headers['access-control-allow-origin'], VIEWER);
    assert.match(String(seg.headers['content-location']), /^\/segmentations\//);
  });

  it('gives a refused origin, and a request without Origin, no CORS headers', async () => {
    const pre = await send(svc.url, 'OPTIONS', '/segment', { origin: EVIL, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' });
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
    assert.equal(pre.headers['access-control-allow-headers'], undefined);
    assert.ok(pre.status >= 400 && pre.status < 500, `refused preflight: ${pre.status}`);
    assert.match(String(pre.headers['content-type']), /application\/problem\+json/);

    const simple = await send(svc.url, 'GET', '/livez', { origin: EVIL });
    assert.equal(simple.status, 200, 'the server answers; the browser withholds it from the page');
    assert.equal(simple.headers['access-control-allow-origin'], undefined);
    assert.equal(simple.headers['access-control-expose-headers'], undefined);

    const plain = await send(svc.url, 'GET', '/livez', {});
    assert.equal(plain.headers['access-control-allow-origin'], undefined);
  });
});

describe('CORS configuration', () => {
  const apps: App[] = [];
  const app = async (env: Record<string, string>) => {
    const a = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent', ...env }), logger: pino({ level: 'silent' }), store: new MemoryResultStore({ max: 10, ttlSeconds: 60 }) });
    apps.push(a);
    return a;
  };
  after(async () => {
    for (const a of apps) await a.close();
  });

  it('unset: no CORS headers and no preflight answer', async () => {
    const a = await app({});
    const pre = await a.inject({ method: 'OPTIONS', url: '/livez', headers: { origin: VIEWER, 'access-control-request-method': 'GET' } });
    assert.equal(pre.statusCode, 404);
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
    const simple = await a.inject({ method: 'GET', url: '/livez', headers: { origin: VIEWER } });
    assert.equal(simple.headers['access-control-allow-origin'], undefined);
  });

  it('`*`: any origin, answered with *', async () => {
    const a = await app({ CORS_ORIGINS: '*' });
    const pre = await a.inject({ method: 'OPTIONS', url: '/segment', headers: { origin: EVIL, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' } });
    assert.equal(pre.statusCode, 204);
    assert.equal(pre.headers['access-control-allow-origin'], '*');
    const simple = await a.inject({ method: 'GET', url: '/livez', headers: { origin: 'http://127.0.0.1:8000' } });
    assert.equal(simple.headers['access-control-allow-origin'], '*');
  });

  it('normalises origins and refuses values that are not origins, naming CORS_ORIGINS', () => {
    assert.deepEqual(loadConfig({ CORS_ORIGINS: 'https://Viewer.Example.org:443, http://localhost:3000' }).corsOrigins, ['https://viewer.example.org', 'http://localhost:3000']);
    assert.equal(loadConfig({}).corsOrigins, undefined);
    assert.equal(loadConfig({ CORS_ORIGINS: '' }).corsOrigins, undefined, 'empty = unset');
    for (const bad of ['https://viewer.example.org/app', 'viewer.example.org', 'ftp://x.org', ',']) {
      assert.throws(
        () => loadConfig({ CORS_ORIGINS: bad }),
        (e: unknown) => e instanceof ConfigError && e.variable === 'CORS_ORIGINS',
        bad,
      );
    }
  });
});
