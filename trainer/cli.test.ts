/**
 * The CLI's failure modes: every bad argument or unreadable dataset ends with one line on stderr,
 * no stack trace, and a non-zero exit code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repo = new URL('..', import.meta.url).pathname;

function cli(args: string[]): { code: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'trainer/cli.ts', ...args], { cwd: repo, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

function assertOneLineFailure(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.notEqual(r.code, 0, 'exit code must be non-zero');
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

test('--help describes the options and exits 0', () => {
  const r = cli(['--help']);
  assert.equal(r.code, 0);
  for (const opt of ['--data', '--layout', '--image-size', '--epochs', '--batch-size', '--fold', '--folds', '--lr', '--seed', '--device', '--out', '--name', '--version', '--depth', '--base-channels', '--resume', '--limit', '--threads']) {
    assert.ok(r.stdout.includes(opt), `help mentions ${opt}`);
  }
});

test('a missing data directory is one line and exit 1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'trainer-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const r = cli(['--data', join(dir, 'nope'), '--out', join(dir, 'models'), '--cache', join(dir, 'cache')]);
  assertOneLineFailure(r, /data directory not found/);
});

test('bad option values are one line each', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'trainer-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  assertOneLineFailure(cli(['--data', dir, '--epochs', '0']), /--epochs/);
  assertOneLineFailure(cli(['--data', dir, '--layout', 'coco']), /--layout/);
  assertOneLineFailure(cli(['--data', dir, '--lr', 'fast']), /--lr/);
  assertOneLineFailure(cli(['--data', dir, '--no-such-option']), /unknown option/);
  assertOneLineFailure(cli(['--epochs', '2']), /--data/);
  assertOneLineFailure(cli(['--data', dir, '--image-size', '100', '--depth', '4']), /multiple of 2\^depth/);
  assertOneLineFailure(cli(['--data', dir, '--fold', '5', '--folds', '5']), /--fold/);
});

test('unreadable SIIM data is one line', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'trainer-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'dicom-images-train'));
  const common = ['--data', dir, '--out', join(dir, 'models'), '--cache', join(dir, 'cache')];
  assertOneLineFailure(cli(common), /train-rle\.csv/);
  await writeFile(join(dir, 'train-rle.csv'), 'Id,Pixels\n');
  assertOneLineFailure(cli(common), /header/);
  await writeFile(join(dir, 'train-rle.csv'), 'ImageId, EncodedPixels\n1.2.3, -1\n');
  assertOneLineFailure(cli(common), /no labelled images/);
});
