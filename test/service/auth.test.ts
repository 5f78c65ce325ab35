/**
 * Bearer-token auth (API_TOKEN): everything but the probes, /metrics and OIP health needs the
 * token; a missing or wrong one gets a 401 problem with WWW-Authenticate. Without API_TOKEN the
 * same routes are open.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { modelRepository, postDicom, startInProcess, testDicom, type InProcess } from './helpers.ts';

const TOKEN = 'test-token-0123456789';
// The API description is public by default (DOCS_PUBLIC=true) so the Swagger page loads and its Authorize button works.
const OPEN = ['/livez', '/readyz', '/startupz', '/metrics', '/v2/health/live', '/v2/health/ready', '/openapi.yaml', '/docs'];
const GUARDED = ['/models', '/models/tiny', '/v2', '/v2/models/tiny', '/v2/models/tiny/ready', '/segmentations/6f1c1f52-0000-4000-8000-000000000000'];

describe('bearer-token auth', () => {
  let repo: { dir: string; remove: () => Promise<void> };
  let on: InProcess;
  let off: InProcess;
  before(async () => {
    repo = await modelRepository();
    on = await startInProcess({ MODEL_REPOSITORY: repo.dir, API_TOKEN: TOKEN });
    // Also the no-preview configuration: overlay.png has nothing to draw on.
    off = await startInProcess({ MODEL_REPOSITORY: repo.dir, PREVIEW_MAX_SIDE: '0' });
  });
  after(async () => {
    await on?.close();
    await off?.close();
    await repo?.remove();
  });

  it('leaves probes, /metrics and OIP health open', async () => {
    for (const p of OPEN) assert.equal((await fetch(on.url + p)).status, 200, p);
  });

  it('answers 401 problem+json with WWW-Authenticate without a token or with a wrong one', async () => {
    for (const p of GUARDED) {
      for (const headers of [{}, { authorization: 'Bearer wrong-token-000' }, { authorization: `Basic ${TOKEN}` }, { authorization: `Bearer ${TOKEN}x` }] as Record<string, string>[]) {
        const r = await fetch(on.url + p, { headers });
        assert.equal(r.status, 401, `${p} ${JSON.stringify(headers)}`);
        assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="unet-seg"/);
        assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
        const body = (await r.json()) as { status: number; type: string };
        assert.equal(body.status, 401);
        assert.equal(body.type, 'urn:unet-seg:problem:unauthorized');
      }
    }
    const seg = await postDicom(on.url, testDicom());
    assert.equal(seg.status, 401);
    assert.equal((await fetch(`${on.url}/admin/reload`, { method: 'POST' })).status, 401);
  });

  it('serves every guarded route with the token', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const seg = await postDicom(on.url, testDicom(), '', auth);
    assert.equal(seg.status, 200);
    const { id } = (await seg.json()) as { id: string };
    for (const p of [...GUARDED.filter((x) => !x.startsWith('/segmentations/')), `/segmentations/${id}`, `/segmentations/${id}/mask.png`]) {
      const r = await fetch(on.url + p, { headers: auth });
      assert.equal(r.status, 200, p);
      await r.arrayBuffer();
    }
    assert.equal((await fetch(`${on.url}/admin/reload`, { method: 'POST', headers: auth })).status, 200);
  });

  it('rate-limits per client when RATE_LIMIT_RPM is set, never the probes', async () => {
    const limited = await startInProcess({ MODEL_REPOSITORY: repo.dir, RATE_LIMIT_RPM: '3' });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await fetch(`${limited.url}/models`)).status, 200);
      const r = await fetch(`${limited.url}/models`);
      assert.equal(r.status, 429);
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.ok(Number(r.headers.get('retry-after')) >= 1, `retry-after ${r.headers.get('retry-after')}`);
      assert.equal(((await r.json()) as { type: string }).type, 'urn:unet-seg:problem:too-many-requests');
      for (let i = 0; i < 5; i++) for (const p of OPEN) assert.equal((await fetch(limited.url + p)).status, 200, p);
    } finally {
      await limited.close();
    }
  });

  it('needs no token when API_TOKEN is unset', async () => {
    for (const p of GUARDED.filter((x) => !x.startsWith('/segmentations/'))) assert.equal((await fetch(off.url + p)).status, 200, p);
    const seg = await postDicom(off.url, testDicom());
    assert.equal(seg.status, 200);
    const { id } = (await seg.json()) as { id: string };
    assert.equal((await fetch(`${off.url}/segmentations/${id}/mask.png`)).status, 200);
    const overlay = await fetch(`${off.url}/segmentations/${id}/overlay.png`);
    assert.equal(overlay.status, 404);
    assert.match(((await overlay.json()) as { detail: string }).detail, /preview=true/);
    // A server that keeps no previews refuses to be asked for one, rather than ignoring it.
    const asked = await postDicom(off.url, testDicom(), '?preview=true');
    assert.equal(asked.status, 400);
    assert.match(((await asked.json()) as { detail: string }).detail, /PREVIEW_MAX_SIDE=0/);
  });
});
