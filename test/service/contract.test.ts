/**
 * openapi.yaml (generated from the routes' zod schemas; openapi.test.ts checks it is current) is the
 * contract: the registered routes and the spec's paths agree both ways (with the same query
 * parameters), the spec's own examples satisfy its schemas, and real responses from a real server
 * (every route, success and error) validate against the schema the spec gives for their status and
 * content type, independently of the serializer that already checked them against the zod schemas.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { z } from 'zod';
import { newUid, writeDicom } from '../../core/dicom/write.ts';
import { encodeMask } from '../../core/rle/index.ts';
import { OPENAPI_PATH } from '../../services/routes/docs.ts';
import { discMask, modelRepository, postDicom, postMultipart, SMALL_MODEL, startInProcess, testDicom, type InProcess } from './helpers.ts';

type Json = Record<string, any>;
const spec = parse(readFileSync(OPENAPI_PATH, 'utf8')) as Json;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

const ajv = new Ajv2020({ strict: false, allErrors: true });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
ajv.addSchema(spec, 'spec');

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
const deref = (obj: Json): Json => {
  let o = obj;
  while (o && typeof o.$ref === 'string') {
    const path = o.$ref.replace(/^#\//, '').split('/').map((s: string) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    o = path.reduce((x: Json, k: string) => x[k], spec);
  }
  return o;
};

/** Spec path template ('/segmentations/{id}') for a concrete request path, or undefined. */
function specPathFor(path: string): string | undefined {
  const candidates = Object.keys(spec.paths).filter((p) => new RegExp(`^${p.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path));
  // Prefer the template with the fewest parameters (literal segments win).
  return candidates.sort((a, b) => (a.match(/\{/g)?.length ?? 0) - (b.match(/\{/g)?.length ?? 0))[0];
}

/** Validates one real response against the spec; returns error text or ''. */
function checkResponse(method: string, path: string, status: number, contentType: string, body: string): string {
  const sp = specPathFor(path);
  if (!sp) return `no spec path for ${path}`;
  const op = spec.paths[sp][method.toLowerCase()];
  if (!op) return `spec has no ${method} ${sp}`;
  const responseRef = op.responses[String(status)] ?? op.responses.default;
  if (!responseRef) return `spec has no ${status} response for ${method} ${sp}`;
  const response = deref(responseRef);
  const media = contentType.split(';')[0]!.trim();
  if (!response.content?.[media]) return `spec's ${status} response for ${method} ${sp} has no ${media} content`;
  if (!/json/.test(media)) return '';
  // Address the schema inside the spec so its #/components refs resolve.
  const base =
    typeof responseRef.$ref === 'string'
      ? `spec#/${pointer(...responseRef.$ref.replace(/^#\//, '').split('/'))}`
      : `spec#/${pointer('paths', sp, method.toLowerCase(), 'responses', String(status))}`;
  const validate = ajv.getSchema(`${base}/${pointer('content', media, 'schema')}`);
  if (!validate) return `no schema at ${base}`;
  if (!validate(JSON.parse(body))) return `${method} ${path} ${status}: ${ajv.errorsText(validate.errors)}\n${body.slice(0, 400)}`;
  return '';
}

describe('OpenAPI contract', () => {
  let srv: InProcess;
  let repo: { remove: () => Promise<void> };
  before(async () => {
    repo = await modelRepository([SMALL_MODEL]);
    srv = await startInProcess({ MODEL_REPOSITORY: (repo as { dir: string } & typeof repo).dir, BODY_LIMIT_BYTES: String(1024 * 1024), MAX_IMAGE_PIXELS: '200000' });
  });
  after(async () => {
    await srv?.close();
    await repo?.remove();
  });

  it('documents exactly the registered routes, with the same query parameters', () => {
    const registered = new Map<string, unknown>();
    for (const r of srv.service.app.routeTable) {
      if (r.method === 'HEAD') continue;
      // Swagger UI's page, assets and JSON/YAML copies of the spec (/docs, /docs/*) are hidden: not API.
      if (r.hidden) continue;
      const qs = r.querystring ? (z.toJSONSchema(r.querystring as z.ZodType, { io: 'input' }) as Json) : undefined;
      registered.set(`${r.method} ${r.url.replace(/:([A-Za-z]+)/g, '{$1}')}`, qs);
    }
    const documented = new Set<string>();
    for (const [p, item] of Object.entries(spec.paths as Json)) for (const m of METHODS) if (item[m]) documented.add(`${m.toUpperCase()} ${p}`);
    assert.deepEqual([...registered.keys()].filter((k) => !documented.has(k)), [], 'registered but not documented');
    assert.deepEqual([...documented].filter((k) => !registered.has(k)), [], 'documented but not registered');

    for (const [key, qs] of registered) {
      const [method, path] = key.split(' ') as [string, string];
      const params = ((spec.paths[path][method.toLowerCase()].parameters ?? []) as Json[]).map(deref).filter((p) => p.in === 'query');
      const specNames = params.map((p) => p.name).sort();
      const routeNames = Object.keys((qs as { properties?: Json } | undefined)?.properties ?? {}).sort();
      assert.deepEqual(routeNames, specNames, `query parameters of ${key}`);
      // Same enums and bounds where the spec states them.
      for (const p of params) {
        const routeSchema = (qs as { properties: Json }).properties[p.name];
        const specSchema = deref(p.schema);
        for (const k of ['enum', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'type', 'pattern']) {
          if (specSchema[k] === undefined) continue;
          const norm = (v: unknown) => (Array.isArray(v) ? [...v].sort() : v);
          assert.deepEqual(norm(routeSchema[k]), norm(specSchema[k]), `${key} ?${p.name} ${k}`);
        }
      }
    }
  });

  it("validates the spec's own examples against its schemas", () => {
    let checked = 0;
    for (const name of Object.keys(spec.components.schemas as Json)) {
      const examples = (spec.components.schemas[name].examples ?? []) as unknown[];
      const v = ajv.getSchema(`spec#/components/schemas/${name}`)!;
      for (const ex of examples) {
        assert.ok(v(ex), `${name}: ${ajv.errorsText(v.errors)}`);
        checked++;
      }
    }
    for (const [p, item] of Object.entries(spec.paths as Json)) {
      for (const m of METHODS) {
        for (const [status, r] of Object.entries((item[m]?.responses ?? {}) as Json)) {
          for (const [media, content] of Object.entries((r.content ?? {}) as Json)) {
            const v = ajv.getSchema(`spec#/${pointer('paths', p, m, 'responses', status, 'content', media, 'schema')}`)!;
            for (const [exName, ex] of Object.entries((content.examples ?? {}) as Json)) {
              assert.ok(v(ex.value), `${m} ${p} ${status} ${exName}: ${ajv.errorsText(v.errors)}`);
              if (media === 'application/problem+json') assert.equal(ex.value.status, Number(status), `${m} ${p} ${status} ${exName}`);
              checked++;
            }
          }
        }
      }
    }
    assert.ok(checked >= 10, `only ${checked} examples`);
  });

  it('real responses from every route validate against the spec', async () => {
    const dicom = testDicom();
    const failures: string[] = [];
    const statuses = new Set<string>();
    const check = async (method: string, path: string, res: Response | Promise<Response>) => {
      const r = await res;
      const body = await r.text();
      statuses.add(`${method} ${specPathFor(path)} ${r.status}`);
      const err = checkResponse(method, path, r.status, r.headers.get('content-type') ?? '', body);
      if (err) failures.push(err);
      return { status: r.status, body };
    };
    const u = srv.url;
    const seg = await check('POST', '/segment', postDicom(u, dicom, '?preview=true'));
    const id = JSON.parse(seg.body).id as string;
    await check('POST', '/segment', postDicom(u, dicom, '?rleFormat=coco&threshold=0.4&minArea=3&tta=true&frame=0&model=tiny:1'));
    await check('POST', '/segment', postMultipart(u, dicom, { groundTruth: encodeMask(discMask(96, 80), 'kaggle'), groundTruthFormat: 'kaggle' }));
    for (const f of ['kaggle', 'siim', 'coco', 'coco-compressed']) await check('GET', `/segmentations/${id}`, fetch(`${u}/segmentations/${id}?rleFormat=${f}`));
    await check('GET', `/segmentations/${id}/mask.png`, fetch(`${u}/segmentations/${id}/mask.png`));
    await check('GET', `/segmentations/${id}/overlay.png`, fetch(`${u}/segmentations/${id}/overlay.png`));
    for (const p of ['/models', '/models/tiny', '/v2', '/v2/health/live', '/v2/health/ready', '/v2/models/tiny', '/v2/models/tiny/versions/1', '/v2/models/tiny/ready', '/v2/models/tiny/versions/1/ready', '/livez', '/readyz', '/startupz', '/metrics', '/openapi.yaml']) {
      await check('GET', p, fetch(u + p));
    }
    await check('POST', '/admin/reload', fetch(`${u}/admin/reload`, { method: 'POST' }));
    // Errors.
    await check('POST', '/segment', postDicom(u, new Uint8Array(3000)));
    await check('POST', '/segment', postDicom(u, writeDicom({ rows: 16, columns: 16, bitsAllocated: 16, sopInstanceUid: newUid(), omitPixelData: true })));
    await check('POST', '/segment', postDicom(u, new Uint8Array(2 * 1024 * 1024)));
    await check('POST', '/segment', postDicom(u, dicom, '?threshold=7'));
    await check('POST', '/segment', postDicom(u, dicom, '?model=nope'));
    await check('POST', '/segment', fetch(`${u}/segment`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }));
    await check('POST', '/segment', postMultipart(u, dicom, { groundTruth: '5 5 1 1', groundTruthFormat: 'kaggle' }));
    await check('GET', '/segmentations/x', fetch(`${u}/segmentations/6f1c1f52-0000-4000-8000-000000000000`));
    await check('GET', '/segmentations/x/mask.png', fetch(`${u}/segmentations/nope/mask.png`));
    await check('GET', '/models/nope', fetch(`${u}/models/nope`));
    await check('GET', '/v2/models/nope', fetch(`${u}/v2/models/nope`));
    // OIP inference: JSON and binary tensor forms, and its errors (problem+json with `error`).
    const oip = (path: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
      fetch(u + path, { method: 'POST', headers, body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body) });
    const b64 = Buffer.from(dicom).toString('base64');
    const jsonInfer = { id: 'c1', inputs: [{ name: 'dicom', shape: [1], datatype: 'BYTES', data: [b64] }], outputs: [{ name: 'mask' }, { name: 'labels' }] };
    await check('POST', '/v2/models/tiny/infer', oip('/v2/models/tiny/infer', jsonInfer));
    await check('POST', '/v2/models/tiny/versions/1/infer', oip('/v2/models/tiny/versions/1/infer', jsonInfer));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(dicom.length);
    const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'dicom', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: dicom.length + 4 } }], parameters: { binary_data_output: true } }));
    await check('POST', '/v2/models/tiny/infer', oip('/v2/models/tiny/infer', Buffer.concat([head, len, dicom]), { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) }));
    await check('POST', '/v2/models/tiny/infer', oip('/v2/models/tiny/infer', { inputs: [] }));
    await check('POST', '/v2/models/nope/infer', oip('/v2/models/nope/infer', jsonInfer));
    await check('POST', '/v2/models/tiny/infer', oip('/v2/models/tiny/infer', { inputs: [{ name: 'image', shape: [1, 1, 64, 64], datatype: 'FP32', data: [] }] }));
    const fp32 = { inputs: [{ name: 'image', shape: [1, 1, 64, 64], datatype: 'FP32', data: new Array<number>(64 * 64).fill(0.5) }], outputs: [{ name: 'mask' }, { name: 'probabilities' }] };
    await check('POST', '/v2/models/tiny/infer', oip('/v2/models/tiny/infer', fp32));
    await check('POST', '/v2/models/tiny/infer', oip('/v2/models/tiny/infer', { inputs: [{ name: 'd', shape: [1], datatype: 'BYTES', data: [Buffer.alloc(300).toString('base64')] }] }));
    assert.deepEqual(failures, []);
    // The run covered success and error statuses of the main routes.
    for (const s of ['POST /v2/models/{name}/infer 200', 'POST /v2/models/{name}/infer 400', 'POST /v2/models/{name}/infer 404', 'POST /v2/models/{name}/infer 415', 'POST /segment 200', 'POST /segment 400', 'POST /segment 404', 'POST /segment 413', 'POST /segment 415', 'POST /segment 422', 'GET /segmentations/{id} 404']) {
      assert.ok(statuses.has(s), `not exercised: ${s}`);
    }
  });
});
