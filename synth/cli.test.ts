import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cli.ts');

async function synth(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', CLI, ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

test('synth CLI writes both layouts and rejects bad arguments', async (t) => {
  const out = await mkdtemp(path.join(tmpdir(), 'synth-cli-'));
  t.after(() => rm(out, { recursive: true, force: true }));

  const siim = await synth(['siim', '-o', path.join(out, 'siim'), '-n', '3', '--test-count', '1', '-s', '64', '--seed', '7', '--syntaxes', 'explicit-le,rle']);
  assert.equal(siim.code, 0, siim.stderr);
  assert.match(siim.stdout, /wrote 3 train .* and 1 test images of 64x64/);
  const csv = await readFile(path.join(out, 'siim', 'train-rle.csv'), 'utf8');
  assert.ok(csv.startsWith('ImageId, EncodedPixels\n'));
  assert.deepEqual((await readdir(path.join(out, 'siim'))).sort(), ['dicom-images-test', 'dicom-images-train', 'syntaxes', 'synth-info.json', 'train-rle.csv']);
  assert.deepEqual((await readdir(path.join(out, 'siim', 'syntaxes'))).sort(), ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2.5']);

  const pairs = await synth(['pairs', '-o', path.join(out, 'lgg'), '-c', '1', '--slices', '2', '-s', '48']);
  assert.equal(pairs.code, 0, pairs.stderr);
  assert.deepEqual((await readdir(path.join(out, 'lgg', 'SYN_MR_0001'))).sort(), ['SYN_MR_0001_1.png', 'SYN_MR_0001_1_mask.png', 'SYN_MR_0001_2.png', 'SYN_MR_0001_2_mask.png']);

  const badSize = await synth(['siim', '-o', path.join(out, 'x'), '-s', '12']);
  assert.notEqual(badSize.code, 0);
  assert.match(badSize.stderr, /--size.*integer in 32\.\.8192/);
  const badTs = await synth(['siim', '-o', path.join(out, 'x'), '--transfer-syntax', 'nope']);
  assert.notEqual(badTs.code, 0);
  assert.match(badTs.stderr, /unknown transfer syntax "nope"/);
  const badFraction = await synth(['siim', '-o', path.join(out, 'x'), '--negative-fraction', '1.5']);
  assert.notEqual(badFraction.code, 0);
  assert.match(badFraction.stderr, /0\.\.1/);
});
