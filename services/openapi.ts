/**
 * The OpenAPI document generated from the routes, and `npm run openapi`, which writes it to
 * openapi.yaml at the repository top (the committed copy that deploy tooling and readers use;
 * test/service/openapi.test.ts fails when it is stale). The app is built but never listens: no
 * engine starts, no port is taken, and the document does not depend on the configuration.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';
import { MemoryResultStore } from './store/memory.ts';
import { openApiYaml } from './contract/openapi.ts';
import { OPENAPI_PATH } from './routes/docs.ts';

const HEADER = '# Generated from the routes by `npm run openapi` (services/openapi.ts); do not edit by hand.\n';

/** The document as openapi.yaml holds it: what GET /openapi.yaml serves, under a generated-file comment. */
export async function generateOpenApi(): Promise<string> {
  const app = await buildApp({ config: loadConfig({}), logger: pino({ level: 'silent' }), store: new MemoryResultStore({ max: 1, ttlSeconds: 1 }) });
  try {
    await app.ready();
    return HEADER + openApiYaml(app.swagger());
  } finally {
    await app.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = await generateOpenApi();
  if (process.argv.includes('--check')) {
    const reason = readFileSync(OPENAPI_PATH, 'utf8') === text ? null : `${OPENAPI_PATH} is stale; run npm run openapi`;
    if (reason) {
      process.stderr.write(`${reason}\n`);
      process.exit(1);
    }
  } else {
    writeFileSync(OPENAPI_PATH, text);
    process.stdout.write(`wrote ${OPENAPI_PATH}\n`);
  }
}
