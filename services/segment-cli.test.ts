import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeMask } from '../core/rle/index.ts';
import { parseSiimRleCsv } from '../core/rle/siim-csv.ts';
import { generateSiimDataset } from '../synth/index.ts';
import { makeModelRepository } from '../test/helpers/model-fixture.ts';
import { imageIdOf } from './segment-cli.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = fileURLToPath(new URL('./segment-cli.ts', import.meta.url));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('imageIdOf strips the DICOM extension only', () => {
  assert.equal(imageIdOf('/a/b/1.2.3.4.dcm'), '1.2.3.4');
  assert.equal(imageIdOf('x/IMG.DCM'), 'IMG');
  assert.equal(imageIdOf('x/1.2.840.5'), '1.2.840.5');
});

test('CLI end to end: folder in, every image in submission.csv (a failed one as -1, reported, exit 1 unless --allow-failures), --truth Dice and report, --model loads only that model', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'segment-cli-'));
  try {
    const data = await generateSiimDataset({ outDir: join(dir, 'data'), count: 5, size: 128, seed: 4 });
    await writeFile(join(dir, 'data', 'dicom-images-train', 'corrupt.dcm'), new TextEncoder().encode('not a dicom at all'));
    await makeModelRepository(join(dir, 'models'), [
      { name: 'unet', version: '1', size: 64 },
      { name: 'unet', version: '2', size: 64, seed: 2 },
      // Another model that fails to load: with --model unet it must not even be tried.
      { name: 'other', version: '1', size: 32, editManifest: (m) => (m.input.name = 'pixels') },
    ]);
    const out = join(dir, 'sub.csv');
    const args = [join(dir, 'data', 'dicom-images-train'), '--models', join(dir, 'models'), '--model', 'unet:1', '--out', out, '--truth', data.csvPath, '--tta', '--min-area', '10', '--workers', '1', '--no-progress'];
    const r = await run(args);
    assert.equal(r.code, 1, 'an image failed: exit 1');
    assert.match(r.stdout, /5\/6 images segmented with unet:1 \(cpu\)/);
    assert.match(r.stderr, /failed: .*corrupt\.dcm: [A-Z_]+: .*\(written as corrupt,-1\)/);
    assert.match(r.stderr, /1 of 6 images failed; each is in .* as -1 \(no mask\); exit code 1 \(--allow-failures to exit 0\)/);
    assert.doesNotMatch(r.stderr, /other/, 'only the named model is loaded');
    assert.match(r.stdout, /mean Dice \d\.\d{4} over 5 images/);

    const csv = await readFile(out, 'utf8');
    const lines = csv.trimEnd().split('\n');
    assert.equal(lines[0], 'ImageId,EncodedPixels');
    const ids = new Set([...data.images.map((i) => i.imageId), 'corrupt']);
    assert.equal(lines.length, 7, 'every image has a row, the failed one too');
    assert.ok(lines.includes('corrupt,-1'));
    for (const line of lines.slice(1)) {
      const [id, rle] = line.split(',');
      assert.ok(ids.has(id!), `unknown ImageId ${id}`);
      if (rle !== '-1') assert.equal(decodeMask(rle!, 'siim', 128, 128).data.length, 128 * 128);
    }
    assert.equal(parseSiimRleCsv(csv.replace('ImageId,EncodedPixels', 'ImageId, EncodedPixels')).size, 6);

    const report = JSON.parse(await readFile(join(dir, 'sub.report.json'), 'utf8'));
    assert.equal(report.images, 6);
    assert.equal(report.succeeded, 5);
    assert.equal(report.failed, 1);
    assert.equal(report.scored, 5);
    assert.ok(report.meanDice >= 0 && report.meanDice <= 1);
    assert.deepEqual(report.model, { name: 'unet', version: '1', executionProvider: 'cpu' });
    assert.equal(typeof report.failures[0].code, 'string');
    assert.equal(report.failures[0].imageId, 'corrupt');
    assert.equal(report.perImage.length, 5);

    // --allow-failures: same CSV, exit 0. Kaggle RLE and the newest version by default.
    const out2 = join(dir, 'kaggle.csv');
    const r2 = await run([join(dir, 'data', 'dicom-images-train'), '--models', join(dir, 'models'), '--model', 'unet', '--out', out2, '--rle', 'kaggle', '--threshold', '0.3', '--workers', '1', '--no-progress', '--allow-failures']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /with unet:2 /);
    assert.doesNotMatch(r2.stderr, /exit code 1/);
    const lines2 = (await readFile(out2, 'utf8')).trimEnd().split('\n').slice(1);
    assert.equal(lines2.length, 6);
    for (const line of lines2) {
      const rle = line.split(',')[1]!;
      if (rle !== '-1') assert.equal(decodeMask(rle, 'kaggle', 128, 128).rows, 128);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('CLI --help documents failed images and --allow-failures', async () => {
  const h = await run(['--help']);
  assert.match(h.stdout.replace(/\s+/g, " "), /an image that fails .* is written as -1 \(no mask\)/);
  assert.match(h.stdout, /--allow-failures/);
});

test('CLI: bad arguments give a one-line error and a non-zero exit', async () => {
  const bad = await run(['x', '--rle', 'png']);
  assert.notEqual(bad.code, 0);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /--rle/);
  const missing = await run(['/definitely/not/here', '--no-progress']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr.trim(), /^error: input not found: \/definitely\/not\/here$/);
  const half = await run(['x', '--max-batch', '1.5']);
  assert.notEqual(half.code, 0);
  assert.match(half.stderr.trim(), /^error: option '--max-batch <n>' argument '1\.5' is invalid\. must be an integer >= 0$/);
});
