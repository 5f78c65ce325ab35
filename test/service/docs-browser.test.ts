/**
 * Swagger UI as a person uses it, in a real headless Chromium (Debian's `chromium`, installed by
 * scripts/test-deps.sh; driven by playwright-core over CDP, no browser download): with API_TOKEN set
 * and DOCS_PUBLIC at its default, /docs loads without a token, Authorize takes the token, "Try it
 * out" on POST /segment starts from a form whose defaults all pass validation, the synthetic DICOM
 * examples/chest.dcm is uploaded, Execute answers 200 with masks in the rendered response, and the
 * same for the OIP infer route's pre-filled JSON example. Skipped, saying why, only when
 * /usr/bin/chromium is absent.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { modelRepository, REPO_ROOT, startInProcess, tempDir, type InProcess } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
// --headless comes from `headless: true` (Playwright adds it itself and drops a copy in args).
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const TOKEN = 'docs-token-0123456789';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (Debian package chromium; bash scripts/test-deps.sh installs it)`;

describe('Swagger UI in a headless browser', { skip }, () => {
  let repo: { dir: string; remove: () => Promise<void> };
  let srv: InProcess;
  let profile: { dir: string; remove: () => Promise<void> };
  let ctx: BrowserContext;
  let page: Page;

  before(async () => {
    repo = await modelRepository();
    srv = await startInProcess({ MODEL_REPOSITORY: repo.dir, API_TOKEN: TOKEN });
    profile = await tempDir('chromium-profile');
    ctx = await chromium.launchPersistentContext(profile.dir, { executablePath: CHROMIUM, headless: true, args: FLAGS });
    page = ctx.pages()[0] ?? (await ctx.newPage());
  });
  after(async () => {
    await ctx?.close();
    await profile?.remove();
    await srv?.close();
    await repo?.remove();
  });

  /** Expands an operation, presses "Try it out" and returns its block. */
  async function tryItOut(id: string) {
    const op = page.locator(`#${id}`);
    await op.locator('.opblock-summary-control').click();
    await op.locator('.try-out__btn').click();
    return op;
  }

  /** Executes and returns the live response's status and body text. */
  async function execute(op: ReturnType<Page['locator']>) {
    await op.locator('.execute').click();
    const row = op.locator('.live-responses-table .response .response-col_status').first();
    await row.waitFor({ timeout: 30_000 });
    const status = (await row.innerText()).trim();
    const body = await op.locator('.live-responses-table .response-col_description pre.microlight').first().innerText();
    return { status, body };
  }

  it('loads /docs without a token, takes the token in Authorize, uploads a DICOM through Try it out and gets 200', async () => {
    // The spec's server is relative, so the page calls this server whatever its port.
    const spec = await (await fetch(`${srv.url}/openapi.yaml`)).text();
    assert.match(spec, /servers:\n\s+- url: \//);
    await page.goto(`${srv.url}/docs`);
    await page.locator('#operations-segmentation-segment').waitFor({ timeout: 30_000 });

    await page.locator('.auth-wrapper .authorize').click();
    await page.locator('.auth-container input[type=text], .auth-container input[type=password]').first().fill(TOKEN);
    await page.locator('.auth-btn-wrapper .authorize').click();
    await page.locator('.btn-done').click();

    const op = await tryItOut('operations-segmentation-segment');
    // Every pre-filled field is a valid value (empty text fields, the documented default enum).
    for (const input of await op.locator('.parameters input[type=text]').all()) assert.equal(await input.inputValue(), '');
    await op.locator('input[type=file]').setInputFiles(join(REPO_ROOT, 'examples/chest.dcm'));
    const { status, body } = await execute(op);
    assert.equal(status, '200', body.slice(0, 500));
    assert.match(body, /"masks"/);
    assert.match(body, /"label": "pneumothorax"/);
  });

  it("executes the OIP infer route's pre-filled JSON example with 200", async () => {
    const op = await tryItOut('operations-oip-oipInfer');
    await op.locator('[data-param-name=name] input').fill('tiny');
    const { status, body } = await execute(op);
    assert.equal(status, '200', body.slice(0, 500));
    assert.match(body, /"model_name": "tiny"/);
    assert.match(body, /"name": "mask"/);
  });
});
