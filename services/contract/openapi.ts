/**
 * The OpenAPI document's frame (info, tags, security) and the transforms that turn the routes' zod
 * schemas into it (@fastify/swagger dynamic mode): the paths are the routes, so the spec cannot drift
 * from what the server validates and serializes. openapi.yaml at the repository top is this document,
 * written by `npm run openapi` and checked by test/service/openapi.test.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { FastifyDynamicSwaggerOptions, SwaggerTransform, SwaggerTransformObject } from '@fastify/swagger';
import { createJsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { stringify } from 'yaml';
import { z } from 'zod';

declare module 'fastify' {
  interface FastifySchema {
    /**
     * A request body documented but not validated by a schema (POST /segment reads its DICOM or
     * multipart stream itself): media type -> zod schema.
     */
    documentedBody?: { description?: string; content: Record<string, { schema: z.ZodType }> };
  }
}

/** Markdown prose written with hard wraps, as one line per paragraph (what YAML keeps readable). */
export const prose = (text: string) => text.replace(/([^\n])\n(?=[^\n])/g, '$1 ');

/** The document as GET /openapi.yaml serves it (openapi.yaml adds a generated-file comment on top). */
export const openApiYaml = (document: unknown) => stringify(document, { lineWidth: 0, aliasDuplicateObjects: false });

// services/contract/ under the repository, or dist/services/contract/ once built (npm run build).
const pkgUrl = [new URL('../../package.json', import.meta.url), new URL('../../../package.json', import.meta.url)].find((u) => existsSync(u))!;
const pkg = JSON.parse(readFileSync(pkgUrl, 'utf8')) as { version: string };

/** package.json's version (process.env.npm_package_version is unset when node runs without npm). */
export const SERVER_VERSION = pkg.version;

export const TAGS = { segmentation: 'segmentation', models: 'models', oip: 'oip', operations: 'operations' } as const;

export const OPENAPI_FRAME: NonNullable<FastifyDynamicSwaggerOptions['openapi']> = {
  openapi: '3.1.0',
  info: {
    title: 'UNet segmentation service',
    version: pkg.version,
    summary: 'DICOM in, run-length-encoded masks out.',
    description: prose(`POST a DICOM Part 10 file and get one run-length-encoded mask per model label back, with Dice
scores when a ground truth is sent along. Results are kept for \`RESULT_TTL_SECONDS\` and can be
fetched again (in any RLE format, or rendered as PNG) by id.

**Not a medical device.** Models served here are research/demo artefacts; see each model's
\`intendedUse\` in \`GET /models\`.

**Privacy.** Responses, stored results and logs never contain patient attributes. The only DICOM
attributes returned are SOPInstanceUID, Modality, the transfer syntax and the image geometry;
the stored preview is an 8-bit image, at most PREVIEW_MAX_SIDE (default 256) pixels on its longer
side, with no metadata.

**Errors** are RFC 9457 problem details (\`application/problem+json\`) with a stable \`type\` URN
and a \`code\` member (e.g. the DICOM decoder's \`NOT_DICOM\`, \`TRUNCATED\`, \`NO_PIXEL_DATA\`). Bad
input is always a 4xx; 5xx means the server is overloaded/not ready (503, with \`Retry-After\`)
or failed (500).

**Authentication** is optional: when the server is started with \`API_TOKEN\`, every route except
the probes (\`/livez\`, \`/readyz\`, \`/startupz\`, \`/v2/health/*\`), \`/metrics\` and (unless the server
runs with \`DOCS_PUBLIC=false\`) this documentation (\`/docs\`, \`/openapi.yaml\`) requires
\`Authorization: Bearer <token>\`: in Swagger UI, press Authorize and paste the token.`),
    license: { name: 'MIT', identifier: 'MIT' },
  },
  // Relative: the server this document is served from, whatever its host, port or ingress path.
  servers: [{ url: '/', description: 'this server' }],
  security: [{}, { bearerAuth: [] }],
  tags: [
    { name: TAGS.segmentation, description: 'Run a model on a DICOM and fetch stored results.' },
    { name: TAGS.models, description: 'The model repository and its serving state.' },
    { name: TAGS.oip, description: 'Open Inference Protocol (KServe v2) health and model metadata.' },
    { name: TAGS.operations, description: 'Kubernetes probes, Prometheus metrics, API documentation.' },
  ],
  components: {
    securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'Required only when the server runs with API_TOKEN.' } },
  },
};

type Json = Record<string, any>;
const zodTransform = createJsonSchemaTransform({ skipList: [] });
const toJson = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as Json;

/**
 * The type provider's transform, plus what it leaves out: a response's `headers` and its media
 * types' `examples`, and a `documentedBody`.
 */
export const transform: SwaggerTransform = (doc) => {
  const out = zodTransform(doc as Parameters<typeof zodTransform>[0]) as { schema: Json; url: string };
  const src = (doc.schema ?? {}) as Json;
  if (!out.schema || out.schema.hide) return out;
  if (typeof out.schema.description === 'string') out.schema.description = prose(out.schema.description);
  for (const [status, response] of Object.entries((src.response ?? {}) as Json)) {
    if (!response || typeof response !== 'object' || !('content' in response)) continue;
    const target = out.schema.response[status] as Json;
    if (response.headers) target.headers = response.headers;
    for (const [media, { schema: _schema, ...extra }] of Object.entries(response.content as Json)) Object.assign(target.content[media], extra);
  }
  delete out.schema.documentedBody;
  const body = src.documentedBody as FastifyDocumentedBody | undefined;
  if (body) {
    out.schema.body = {
      ...(body.description ? { description: body.description } : {}),
      content: Object.fromEntries(Object.entries(body.content).map(([media, { schema }]) => [media, { schema: toComponentRefs(stripRoot(toJson(schema))) }])),
    };
  }
  return out;
};
type FastifyDocumentedBody = NonNullable<import('fastify').FastifySchema['documentedBody']>;

const stripRoot = ({ $schema: _s, ...rest }: Json) => rest;

/**
 * A documented body's schemas that carry an id (zod `.meta({ id })`) come out of z.toJSONSchema as
 * local `#/$defs/<id>` references; in the document they are components (the type provider collects
 * every schema with an id), so point the references there and drop the local copies.
 */
function toComponentRefs(schema: Json): Json {
  const { $defs: _defs, ...rest } = schema;
  return JSON.parse(JSON.stringify(rest).replace(/"#\/\$defs\/([^"]+)"/g, '"#/components/schemas/$1"')) as Json;
}

/** The type provider's components (every schema with an id), less the ones no path refers to. */
export const transformObject: SwaggerTransformObject = (doc) => {
  const document = jsonSchemaTransformObject(doc as Parameters<typeof jsonSchemaTransformObject>[0]) as Json;
  const schemas = (document.components?.schemas ?? {}) as Json;
  const used = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')) {
        const id = v.slice('#/components/schemas/'.length);
        if (!used.has(id)) {
          used.add(id);
          visit(schemas[id]);
        }
      } else visit(v);
    }
  };
  visit(document.paths);
  document.components.schemas = Object.fromEntries(Object.entries(schemas).filter(([id]) => used.has(id)));
  return document as ReturnType<SwaggerTransformObject>;
};
