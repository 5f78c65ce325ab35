/**
 * openapi.yaml is generated from the routes (`npm run openapi`): this fails when the committed file
 * differs from what the routes generate now, and checks the parts of it that other tooling reads.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { generateOpenApi } from '../../services/openapi.ts';
import { OPENAPI_PATH } from '../../services/routes/docs.ts';

describe('openapi.yaml', () => {
  it('is the document generated from the routes (run `npm run openapi` after changing a route)', async () => {
    const generated = await generateOpenApi();
    const committed = readFileSync(OPENAPI_PATH, 'utf8');
    if (committed !== generated) {
      const a = committed.split('\n');
      const b = generated.split('\n');
      const line = a.findIndex((l, i) => l !== b[i]);
      assert.fail(`openapi.yaml is stale; run npm run openapi (first difference at line ${line + 1}:\n  committed: ${a[line]}\n  generated: ${b[line]})`);
    }
  });

  it('documents the probe and scrape paths the deploy manifests use, without security', () => {
    const spec = parse(readFileSync(OPENAPI_PATH, 'utf8')) as { paths: Record<string, { get?: { security?: unknown[] } }> };
    for (const p of ['/livez', '/readyz', '/startupz', '/metrics', '/v2/health/live', '/v2/health/ready']) {
      assert.deepEqual(spec.paths[p]?.get?.security, [], p);
    }
    assert.equal(spec.paths['/models']?.get?.security, undefined, 'guarded routes inherit the document security');
  });
});
