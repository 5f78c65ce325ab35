/**
 * DOCS_PUBLIC (default true): with API_TOKEN set, Swagger UI (/docs and its assets and spec copies)
 * and /openapi.yaml answer without a token, while the API itself still needs it; DOCS_PUBLIC=false
 * puts the documentation behind the token too. The document declares the bearer scheme (what makes
 * Swagger UI's Authorize button work) and a relative server URL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../services/config.ts';
import { modelRepository, startInProcess, type InProcess } from './helpers.ts';

const TOKEN = 'docs-token-0123456789';
const DOCS = ['/docs', '/docs/json', '/docs/yaml', '/docs/static/index.html', '/openapi.yaml'];

describe('DOCS_PUBLIC', () => {
  let repo: { dir: string; remove: () => Promise<void> };
  let open: InProcess;
  let closed: InProcess;
  before(async () => {
    repo = await modelRepository();
    open = await startInProcess({ MODEL_REPOSITORY: repo.dir, API_TOKEN: TOKEN });
    closed = await startInProcess({ MODEL_REPOSITORY: repo.dir, API_TOKEN: TOKEN, DOCS_PUBLIC: 'false' });
  });
  after(async () => {
    await open?.close();
    await closed?.close();
    await repo?.remove();
  });

  it('defaults to true and refuses other values', () => {
    assert.equal(loadConfig({}).docsPublic, true);
    assert.equal(loadConfig({ DOCS_PUBLIC: 'false' }).docsPublic, false);
    assert.throws(() => loadConfig({ DOCS_PUBLIC: 'yes' }), /DOCS_PUBLIC/);
  });

  it('serves the documentation without a token by default, the API still with one', async () => {
    for (const p of DOCS) {
      const r = await fetch(open.url + p, { redirect: 'manual' });
      assert.ok(r.status === 200 || r.status === 302, `${p}: ${r.status}`);
      await r.arrayBuffer();
    }
    assert.equal((await fetch(`${open.url}/models`)).status, 401);
    assert.equal((await fetch(`${open.url}/models`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  });

  it('puts the documentation behind the token with DOCS_PUBLIC=false', async () => {
    for (const p of DOCS) {
      assert.equal((await fetch(closed.url + p, { redirect: 'manual' })).status, 401, p);
      const r = await fetch(closed.url + p, { redirect: 'manual', headers: { authorization: `Bearer ${TOKEN}` } });
      assert.ok(r.status === 200 || r.status === 302, `${p} with token: ${r.status}`);
      await r.arrayBuffer();
    }
  });

  it('declares the bearer scheme, a relative server and public docs in the document', async () => {
    const spec = parse(await (await fetch(`${open.url}/openapi.yaml`)).text()) as Record<string, any>;
    assert.deepEqual(spec.servers, [{ url: '/', description: 'this server' }]);
    assert.deepEqual(spec.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer', description: spec.components.securitySchemes.bearerAuth.description });
    assert.deepEqual(spec.security, [{}, { bearerAuth: [] }]);
    assert.deepEqual(spec.paths['/openapi.yaml'].get.security, []);
  });
});
