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

test('CLI end to end: folder in, submission.csv out, bad file counted, --truth prints mean Dice and writes a report', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'segment-cli-'));
  try {
    const data = await generateSiimDataset({ outDir: join(dir, 'data'), count: 5, size: 128, seed: 4 });
    await writeFile(join(dir, 'data', 'dicom-images-train', 'corrupt.dcm'), new TextEncoder().encode('not a dicom at all'));
    await makeModelRepository(join(dir, 'models'), [{ name: 'unet', version: '1', size: 64 }, { name: 'unet', version: '2', size: 64, seed: 2 }]);
    const out = join(dir, 'sub.csv');
    const r = await run([join(dir, 'data', 'dicom-images-train'), '--models', join(dir, 'models'), '--model', 'unet:1', '--out', out, '--truth', data.csvPath, '--tta', '--min-area', '10', '--workers', '1', '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /5\/6 images segmented with unet:1 \(cpu\)/);
    assert.match(r.stdout, /failed: .*corrupt\.dcm: [A-Z_]+: /);
    assert.match(r.stdout, /mean Dice \d\.\d{4} over 5 images/);

    const csv = await readFile(out, 'utf8');
    const lines = csv.trimEnd().split('\n');
    assert.equal(lines[0], 'ImageId,EncodedPixels');
    const ids = new Set(data.images.map((i) => i.imageId));
    assert.equal(lines.length, 6);
    for (const line of lines.slice(1)) {
      const [id, rle] = line.split(',');
      assert.ok(ids.has(id!), `unknown ImageId ${id}`);
      if (rle !== '-1') assert.equal(decodeMask(rle!, 'siim', 128, 128).data.length, 128 * 128);
    }
    assert.equal(parseSiimRleCsv(csv.replace('ImageId,EncodedPixels', 'ImageId, EncodedPixels')).size, 5);

    const report = JSON.parse(await readFile(join(dir, 'sub.report.json'), 'utf8'));
    assert.equal(report.images, 6);
    assert.equal(report.succeeded, 5);
    assert.equal(report.failed, 1);
    assert.equal(report.scored, 5);
    assert.ok(report.meanDice >= 0 && report.meanDice <= 1);
    assert.deepEqual(report.model, { name: 'unet', version: '1', executionProvider: 'cpu' });
    assert.equal(typeof report.failures[0].code, 'string');
    assert.equal(report.perImage.length, 5);

    // Kaggle RLE and the newest version by default.
    const out2 = join(dir, 'kaggle.csv');
    const r2 = await run([join(dir, 'data', 'dicom-images-train'), '--models', join(dir, 'models'), '--out', out2, '--rle', 'kaggle', '--threshold', '0.3', '--workers', '1', '--no-progress']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /with unet:2 /);
    for (const line of (await readFile(out2, 'utf8')).trimEnd().split('\n').slice(1)) {
      const rle = line.split(',')[1]!;
      if (rle !== '-1') assert.equal(decodeMask(rle, 'kaggle', 128, 128).rows, 128);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('CLI: bad arguments give a one-line error and a non-zero exit', async () => {
  const bad = await run(['x', '--rle', 'png']);
  assert.notEqual(bad.code, 0);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /--rle/);
  const missing = await run(['/definitely/not/here', '--no-progress']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr.trim(), /^error: input not found: \/definitely\/not\/here$/);
  const zero = await run(['x', '--max-batch', '0']);
  assert.notEqual(zero.code, 0);
  assert.match(zero.stderr.trim(), /^error: option '--max-batch <n>' argument '0' is invalid\. must be an integer >= 1$/);
});
